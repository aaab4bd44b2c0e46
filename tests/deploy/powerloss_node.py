"""The two processes of the power-loss test, on one node (its SILICONHEALTH_HOME comes from the environment).

`write`: records encounters through records.services in a loop and seals a checkpoint every few visits;
each line it prints ("P id", "E id", "C size root") is printed only AFTER the commit returned, so a
printed id is a promise that the row is durable. With POWERLOSS_SLOW_SEAL=1 the checkpoint signature
pauses inside the sealing transaction (and says "SEALING" first), so the test can kill mid-seal.

`check`: a long-lived checker; for each JSON request on stdin (the ids the writer reported) it answers
one JSON line: which reported rows or checkpoints are missing, and the `ledger verify` report.
"""

import datetime as dt
import json
import os
import sys
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")
django.setup()

from django.db import connection  # noqa: E402

from ledger import note  # noqa: E402
from ledger import services as ledger_services  # noqa: E402
from ledger.models import Checkpoint, LogHead  # noqa: E402
from ledger.verification import verify_all  # noqa: E402
from records import services  # noqa: E402
from records.models import ClinicalNote, Encounter, Observation, Patient  # noqa: E402


def write() -> None:
    if os.environ.get("POWERLOSS_SLOW_SEAL") == "1":
        sign = note.sign_note

        def slow_sign(*args, **kwargs):
            print("SEALING", flush=True)
            time.sleep(0.3)  # inside seal_checkpoint's transaction: the write lock is held
            return sign(*args, **kwargs)

        note.sign_note = slow_sign
    print("READY", flush=True)
    written, patient = 0, None
    while True:
        if patient is None or written % 5 == 0:
            patient = services.register_patient(
                author="powerloss",
                given_name="Power",
                family_name=f"Loss{os.getpid()}-{written}",
                sex="unknown",
                birth_date=dt.date(1990, 1, 1),
            )
            print(f"P {patient.pk}", flush=True)
        encounter = services.record_encounter(
            patient=patient,
            author="powerloss",
            data=services.EncounterInput(
                reason="solar outage drill",
                vitals=[
                    services.VitalSign("8310-5", Decimal("36.8")),
                    services.VitalSign("8867-4", Decimal(72)),
                ],
                note=f"visit {written} of writer {os.getpid()}",
            ),
        )
        print(f"E {encounter.pk}", flush=True)
        written += 1
        if written % 4 == 0:
            checkpoint = ledger_services.seal_checkpoint()
            print(f"C {checkpoint.size} {bytes(checkpoint.root_hash).hex()}", flush=True)


def check_once(request: dict) -> dict:
    patients = set(request["patients"])
    encounters = set(request["encounters"])
    found_patients = {str(pk) for pk in Patient.objects.filter(pk__in=patients).values_list("pk", flat=True)}
    found_encounters = {
        str(pk) for pk in Encounter.objects.filter(pk__in=encounters).values_list("pk", flat=True)
    }
    # A visit is one transaction: its vitals and note exist exactly when the encounter does.
    partial = [
        pk
        for pk in found_encounters
        if Observation.objects.filter(encounter_id=pk).count() != 2
        or not ClinicalNote.objects.filter(encounter_id=pk).exists()
    ]
    stored = {(c.size, bytes(c.root_hash).hex()) for c in Checkpoint.objects.all()}
    missing_checkpoints = [c for c in request["checkpoints"] if tuple(c) not in stored]
    report = verify_all()
    answer = {
        "missing_patients": sorted(patients - found_patients),
        "missing_encounters": sorted(encounters - found_encounters),
        "partial_encounters": partial,
        "missing_checkpoints": missing_checkpoints,
        "verify": report.as_dict(),
        "rows": {"patients": Patient.objects.count(), "encounters": Encounter.objects.count()},
        "checkpoints": len(stored),
        "sizes": dict(LogHead.objects.values_list("origin", "size")),
    }
    connection.close()  # hold nothing open while the next writer runs
    return answer


def check() -> None:
    for line in sys.stdin:
        print(json.dumps(check_once(json.loads(line)), default=str), flush=True)


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]]()
