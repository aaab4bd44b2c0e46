"""Serving a partial child (sync/partial.py): the time for a whole served pull (every request until the
parent has no more) from a log of N seeded patients, the way the parent picks it (the object_id
lookup up to 20,000 objects, else reading the log a bounded span per request), against the other way
measured in the same run on the same child; and the slowest single request (a gunicorn worker must
answer each within its 30 s timeout).

Two children: a small one (a few dozen patients referred: the lookup) and a large one (more than
20,000 objects, its patients marked registered there: the log is read). Env: BENCH_SERVED_PATIENTS (log size, default 1000 patients),
BENCH_SERVED_SMALL / BENCH_SERVED_LARGE (patients referred to each child, default 20 / 850).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from .common import manage, print_table, run_in_node, write_result

PATIENTS = int(os.environ.get("BENCH_SERVED_PATIENTS", "1000"))
SMALL = int(os.environ.get("BENCH_SERVED_SMALL", "20"))
LARGE = int(os.environ.get("BENCH_SERVED_LARGE", "850"))

MEASURE = r"""
import base64, json, time
import django; django.setup()
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization
from ledger.identity import node_id_for
from ledger.models import Entry
from records.models import Patient
from sync import partial, partial_patients, partial_scan, services

def child(patients, referred):
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    peer = services.add_peer(node_id=node_id_for(raw), public_key=base64.b64encode(raw).decode(),
                             tier="mobile_point", role="child")
    if referred:
        for pk in patients:
            partial.refer_patient(peer=peer, patient_id=pk, referred_by="bench")
    else:  # served as registered there: until a pull ends, each answer re-sends the referred
        # patients' entries behind the cursor, and more than one answer's worth never ends (a known gap)
        Patient.objects.filter(pk__in=patients).update(origin=peer.node_id)
    return peer

def pull(peer, lookup_max):
    partial_scan._LOOKUP_MAX_OBJECTS = lookup_max
    cursor, referrals, served, slowest, requests = {}, 0, set(), 0.0, 0
    started = time.perf_counter()
    for _ in range(1000):
        t = time.perf_counter()
        reply = partial.handle_served(peer, {"cursor": cursor, "referrals": referrals, "max_entries": 5000})
        slowest, requests = max(slowest, time.perf_counter() - t), requests + 1
        for g in reply["groups"]:
            served |= {(g["origin"], e["index"]) for e in g.get("entries", [])}
            cursor[g["origin"]] = max(cursor.get(g["origin"], 0), g["scanned_to"])
        if not reply["more"]:
            break
    else:
        raise RuntimeError("the pull did not end in 1000 requests")
    return {"seconds": time.perf_counter() - started, "slowest_request_s": slowest, "requests": requests,
            "entries": len(served), "served": sorted(served)}

ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
out = {"log_entries": Entry.objects.count()}
default = partial_scan._LOOKUP_MAX_OBJECTS
for name, count, referred in (("small", SMALL, True), ("large", LARGE, False)):
    peer = child(ids[-count:] if referred else ids[:count], referred)
    objects = len(partial_patients._records_of(set(ids[:count])))
    lookup, scan = pull(peer, 10**9), pull(peer, 0)
    assert lookup.pop("served") == scan.pop("served"), "the two ways served different entries"
    out[name] = {"patients": count, "objects": objects, "lookup": lookup, "scan": scan,
                 "chosen": "lookup" if objects <= default else "scan"}
print(json.dumps(out))
"""


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="sh-bench-served-"))
    env = {
        "SILICONHEALTH_TIER": "rural_clinic",
        "CELERY_BROKER_URL": "memory://",
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
        "SILICONHEALTH_SEARCH_INDEX_ON_WRITE": "0",
    }
    try:
        manage(home, "migrate", "-v", "0", **env)
        manage(home, "seed_demo", "--patients", str(PATIENTS), "--bulk", "500", "--no-users", **env)
        manage(home, "ledger", "checkpoint", **env)
        code = f"SMALL = {SMALL}\nLARGE = {LARGE}\n" + MEASURE
        result = {"patients": PATIENTS, **json.loads(run_in_node(home, code, **env))}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    path = write_result("served", result)
    rows = []
    for name in ("small", "large"):
        child = result[name]
        chosen, other = child[child["chosen"]], child["scan" if child["chosen"] == "lookup" else "lookup"]
        rows.append(
            (
                f"{name} child: {child['patients']} patients, {child['objects']} objects",
                f"{child['chosen']} {chosen['seconds']:.2f} s ({chosen['requests']} requests, "
                f"slowest {chosen['slowest_request_s']:.2f} s)",
                f"other way {other['seconds']:.2f} s (slowest {other['slowest_request_s']:.2f} s)",
                f"ratio {chosen['seconds'] / max(other['seconds'], 1e-6):.2f}",
            )
        )
    print_table(f"served pulls from a log of {result['log_entries']} entries ({PATIENTS} patients)", rows)
    print(f"  -> {path}")
