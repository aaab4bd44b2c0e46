"""FHIR import and export speed (resources per second) against fhir.resources parsing alone.

1. Seed a node with BENCH_FHIR_PATIENTS demo patients (with their encounters, observations,
   diagnoses, prescriptions and notes).
2. Export the whole node as NDJSON (one file per type, every resource validated on the way out),
   in a child process of its own, so its peak RSS shows the export's memory.
3. Export the patients as collection Bundles of BENCH_FHIR_BATCH patients each ($everything-style).
4. Baseline: parse those bundles with fhir.resources alone (json + model_validate per resource).
5. Import them into an empty node (validate, map, resolve, write through services and the ledger),
   then `ledger verify` that node.
Each step runs in a child process on SQLite, like the other benchmarks.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, manage, node_env, print_table, write_result

PATIENTS = int(os.environ.get("BENCH_FHIR_PATIENTS", "10000"))
BATCH = int(os.environ.get("BENCH_FHIR_BATCH", "100"))


def _child(home: Path, code: str, **replacements) -> dict:
    for name, value in replacements.items():
        code = code.replace(name, repr(value))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=node_env(home), capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


EXPORT_NDJSON = r"""
import json, resource, time
from pathlib import Path
# A forked child inherits its parent's resident pages in ru_maxrss; reset the high-water mark
# (Linux: clear_refs 5) so the figure is this export's own peak.
try:
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
import django; django.setup()
from records.fhir import exporter
started = time.perf_counter()
def peak_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
counts = exporter.write_ndjson(exporter.node_export(exporter.export_context()), Path(OUT_DIR))
elapsed = time.perf_counter() - started
print(json.dumps({"resources": sum(counts.values()), "by_type": counts, "seconds": elapsed,
                  "max_rss_mb": peak_rss_mb()}))
"""

EXPORT_BATCHES = r"""
import itertools, json, time
from pathlib import Path
import django; django.setup()
from records.fhir import exporter
from records.models import Patient
out = Path(OUT_DIR); out.mkdir(parents=True, exist_ok=True)
ctx = exporter.export_context()
ids = list(Patient.objects.order_by("pk").values_list("pk", flat=True))
started = time.perf_counter()
total = files = 0
for start in range(0, len(ids), BATCH):
    patients = Patient.objects.filter(pk__in=ids[start:start + BATCH]).order_by("pk")
    # one patient's record after another; the node's own Organization/Location once per bundle
    resources = itertools.chain.from_iterable(
        ((t, r) for t, r in exporter.patient_export(p, ctx) if not (i and t in {"Organization", "Location"}))
        for i, p in enumerate(patients)
    )
    with (out / f"batch-{files:05d}.json").open("w", encoding="utf-8") as handle:
        total += exporter.write_bundle(resources, handle)
    files += 1
print(json.dumps({"resources": total, "files": files, "seconds": time.perf_counter() - started}))
"""

PARSE = r"""
import json, time
from pathlib import Path
from fhir.resources.R4B import get_fhir_model_class
from records.fhir import jsonio
files = sorted(Path(OUT_DIR).glob("batch-*.json"))
started = time.perf_counter()
total = 0
for path in files:
    bundle = jsonio.loads(path.read_bytes())
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        total += 1
print(json.dumps({"resources": total, "seconds": time.perf_counter() - started}))
"""

IMPORT = r"""
import json, time
from pathlib import Path
import django; django.setup()
from records.fhir import jsonio
from records.fhir.importer import import_bundle
files = sorted(Path(OUT_DIR).glob("batch-*.json"))
started = time.perf_counter()
total = created = 0
for path in files:
    result = import_bundle(jsonio.loads(path.read_bytes()), author="bench")
    total += len(result.plans)
    created += result.count("create")
print(json.dumps({"resources": total, "created": created, "seconds": time.perf_counter() - started}))
"""

VERIFY = r"""
import json, time
import django; django.setup()
from ledger import verification
started = time.perf_counter()
report = verification.verify_all()
print(json.dumps({"ok": report.ok, "records": report.records, "seconds": time.perf_counter() - started}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "target"
        for home in (source, target):
            manage(home, "migrate", "-v", "0")
        started = time.perf_counter()
        manage(source, "seed_demo", "--patients", str(PATIENTS), "--no-users")
        seed_seconds = time.perf_counter() - started
        ndjson = _child(source, EXPORT_NDJSON, OUT_DIR=str(Path(tmp) / "ndjson"))
        batches = _child(source, EXPORT_BATCHES, OUT_DIR=str(Path(tmp) / "bundles"), BATCH=BATCH)
        parse = _child(source, PARSE, OUT_DIR=str(Path(tmp) / "bundles"))
        imported = _child(target, IMPORT, OUT_DIR=str(Path(tmp) / "bundles"))
        verify = _child(target, VERIFY)

    def rate(part: dict) -> int:
        return round(part["resources"] / part["seconds"])

    result = {
        "patients": PATIENTS,
        "seed_seconds": round(seed_seconds, 1),
        "export_ndjson": {
            "resources": ndjson["resources"],
            "resources_per_s": rate(ndjson),
            "max_rss_mb": round(ndjson["max_rss_mb"]),
            "by_type": ndjson["by_type"],
        },
        "export_bundles": {
            "resources": batches["resources"],
            "bundles": batches["files"],
            "patients_per_bundle": BATCH,
            "resources_per_s": rate(batches),
        },
        "parse_baseline": {"resources": parse["resources"], "resources_per_s": rate(parse)},
        "import": {
            "resources": imported["resources"],
            "created": imported["created"],
            "resources_per_s": rate(imported),
            "vs_parse_baseline": round(rate(imported) / rate(parse), 3),
        },
        "ledger_verify_after_import": verify,
        "database": "SQLite (WAL, synchronous=FULL)",
    }
    path = write_result("fhir", result)
    print_table(
        f"fhir, {PATIENTS} patients ({path.relative_to(ROOT)})",
        [
            (
                "fhir.resources parse + validate alone (resources/s)",
                result["parse_baseline"]["resources_per_s"],
            ),
            ("import: validate, map, write, ledger (resources/s)", result["import"]["resources_per_s"]),
            ("import / parse baseline", result["import"]["vs_parse_baseline"]),
            ("export NDJSON, validated (resources/s)", result["export_ndjson"]["resources_per_s"]),
            ("export NDJSON peak RSS (MB)", result["export_ndjson"]["max_rss_mb"]),
            (
                f"export bundles of {BATCH} patients (resources/s)",
                result["export_bundles"]["resources_per_s"],
            ),
            ("ledger verify after import", "ok" if verify["ok"] else "FAILED"),
        ],
    )


if __name__ == "__main__":
    main()
