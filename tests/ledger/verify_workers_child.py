"""For test_verification_workers: builds a small ledger in a node home, then tampers with it step after
step (each on top of the last) and after each step verifies with one and with two worker processes, in
ranges of a few entries and rows. Prints one JSON line: per step, the problem kinds and whether both
reports are the same."""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")
django.setup()

from django.db import connection  # noqa: E402

from ledger import services, verification  # noqa: E402
from ledger.entries import entry_leaf_hash, envelope_from_row  # noqa: E402
from ledger.models import Checkpoint, Entry, LogHead  # noqa: E402
from records.models import ClinicalNote, Observation, Patient  # noqa: E402
from tests.records import factories  # noqa: E402

verification.LOG_RANGE, verification.ROW_RANGE, verification.MISSING_RANGE = 4, 3, 4


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def db_id(pk):
    return pk.hex if connection.vendor == "sqlite" else pk


def rehash(entry, index):
    return entry_leaf_hash(
        envelope_from_row(
            entry.origin,
            index,
            entry.kind,
            entry.object_type,
            entry.object_id,
            entry.payload,
            entry.author,
            entry.hlc,
        )
    )


def edit_row():
    note = ClinicalNote.objects.order_by("created_at").first()
    ClinicalNote.objects.filter(pk=note.pk).update(text="edited behind the app's back")


def delete_row():
    sql(
        "DELETE FROM records_observation WHERE id = %s",
        [db_id(Observation.objects.order_by("pk").first().pk)],
    )


def edit_payload():
    entry = Entry.objects.get(index=9)
    Entry.objects.filter(pk=entry.pk).update(payload=entry.payload.replace('"', '"x', 1)[:-1] + ',"x":1}')


def forge_signature():
    checkpoint = Checkpoint.objects.order_by("size").first()
    Checkpoint.objects.filter(pk=checkpoint.pk).update(
        note=checkpoint.note.replace("\n\n", "\nextension\n\n", 1)
    )


def edit_and_rehash():
    entry = Entry.objects.get(index=17)
    entry.payload = payload = entry.payload[:-1] + ',"forged":true}'
    Entry.objects.filter(pk=entry.pk).update(payload=payload, leaf_hash=rehash(entry, entry.index))


def swap():
    first, second = Entry.objects.get(index=22), Entry.objects.get(index=23)
    Entry.objects.filter(pk=first.pk).update(index=1_000_000)
    Entry.objects.filter(pk=second.pk).update(index=22)
    Entry.objects.filter(pk=first.pk).update(index=23)


def delete_entry():
    Entry.objects.filter(index=30).delete()


def truncate():
    size = Entry.objects.order_by("-index").first().index + 1
    Entry.objects.filter(index__gte=size - 3).delete()
    LogHead.objects.update(size=size - 3)


def unledger_row():
    patient = Patient.objects.order_by("created_at").first()
    Entry.objects.filter(object_id=patient.pk).delete()


for n in range(4):
    patient = factories.patient(given_name=f"P{n}")
    factories.encounter(patient, note=f"visit {n}")
    services.seal_checkpoint()
    factories.encounter(patient, note=f"second visit {n}")
services.seal_checkpoint()

steps = [("clean", None), ("edit_row", edit_row), ("delete_row", delete_row), ("edit_payload", edit_payload)]
steps += [("forge_signature", forge_signature), ("edit_and_rehash", edit_and_rehash), ("swap", swap)]
steps += [("delete_entry", delete_entry), ("truncate", truncate), ("unledger_row", unledger_row)]
results = []
for name, tamper in steps:
    if tamper:
        tamper()
    one, two = verification.verify_all(workers=1), verification.verify_all(workers=int(sys.argv[1]))
    results.append(
        {
            "step": name,
            "kinds": sorted({p.kind for p in one.problems}),
            "same": one.as_dict() == two.as_dict(),
            "workers": [one.workers, two.workers],
            "worker_peaks_kb": sorted(two.workers_peak_kb.values()),
            "report": two.as_dict(),
        }
    )
print(json.dumps({"entries": Entry.objects.count(), "steps": results}))
