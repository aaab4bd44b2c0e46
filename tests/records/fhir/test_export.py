import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from ledger import verification
from ledger.models import Checkpoint, Entry, LogHead, TreeNode
from records.fhir import exporter
from records.fhir.validation import validate_resource
from records.models import (
    Attachment,
    ClinicalNote,
    Condition,
    DuplicateDismissal,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
    PatientNumberSequence,
)
from tests.records import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
NODE_TYPES = {"Organization", "Location"}  # they describe the node itself, not its records


def by_resource(bundle: dict, skip: set = frozenset()) -> dict:
    """(type, id) -> resource without server-assigned metadata (meta: versionId, lastUpdated, source)."""
    resources = {}
    for entry in bundle["entry"]:
        resource = dict(entry["resource"])
        resource.pop("meta", None)
        if resource["resourceType"] not in skip:
            resources[resource["resourceType"], resource["id"]] = resource
    return resources


def _empty_the_node():
    Patient.objects.update(merged_into=None)
    for model in (DuplicateDismissal, ClinicalNote, Attachment, Observation, Condition, MedicationRequest):
        model.objects.all().delete()
    for model in (Encounter, Patient, PatientNumberSequence, TreeNode, Entry, Checkpoint):
        model.objects.all().delete()
    LogHead.objects.update(size=0)  # the node itself stays; its log starts again


def test_round_trip_in_one_process_is_equal_resource_by_resource(tmp_path):
    call_command("seed_demo", patients=6, no_users=True, stdout=io.StringIO())
    first_file = tmp_path / "first.json"
    call_command("fhir", "export", "--out", str(first_file), stdout=io.StringIO())
    first = json.loads(first_file.read_text())
    assert all(validate_resource(e["resource"], "") == [] for e in first["entry"])
    _empty_the_node()
    assert Patient.objects.count() == 0 and Entry.objects.count() == 0
    call_command("fhir", "import", str(first_file), stdout=io.StringIO())
    second_file = tmp_path / "second.json"
    call_command("fhir", "export", "--out", str(second_file), stdout=io.StringIO())
    second = json.loads(second_file.read_text())
    a, b = by_resource(first), by_resource(second)
    assert len(a) > 100
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    assert verification.verify_all().ok


def test_ndjson_export_writes_one_file_per_type_and_imports_back(tmp_path):
    factories.encounter(factories.patient())
    out = io.StringIO()
    call_command("fhir", "export", "--ndjson", str(tmp_path / "nd"), "--json", stdout=out)
    report = json.loads(out.getvalue())
    files = {path.stem: path.read_text().splitlines() for path in (tmp_path / "nd").glob("*.ndjson")}
    assert report["by_type"] == {name: len(lines) for name, lines in files.items()}
    assert files.keys() == {
        "Organization",
        "Location",
        "Practitioner",
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "MedicationRequest",
        "DocumentReference",
    }
    assert len(files["Observation"]) == 2
    assert all(json.loads(line)["resourceType"] == "Observation" for line in files["Observation"])
    before = Entry.objects.count()
    out = io.StringIO()
    call_command("fhir", "import", str(tmp_path / "nd"), stdout=out)  # the same node: all found again
    assert "0 created" in out.getvalue() and Entry.objects.count() == before


def test_patient_export_holds_that_patient_only():
    amina = factories.patient()
    factories.encounter(amina)
    factories.encounter(factories.patient(given_name="Juma", phone="+255700000001"))
    ctx = exporter.export_context()
    bundle = exporter.bundle_dict(exporter.patient_export(amina, ctx))
    patients = [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert patients == [str(amina.pk)]
    subjects = {e["resource"]["subject"]["reference"] for e in bundle["entry"] if "subject" in e["resource"]}
    assert subjects == {f"Patient/{amina.pk}"}
    out = io.StringIO()
    call_command("fhir", "export", "--patient", amina.patient_number, stdout=out)
    assert json.loads(out.getvalue())["entry"][3]["resource"]["id"] == str(amina.pk)


def test_merged_patients_export_their_link_and_import_it():
    keep = factories.patient()
    duplicate = factories.patient(given_name="Aminah", phone="+255700000002")
    from records import services

    services.merge_patients(keep=keep, duplicate=duplicate, author="tester")
    bundle = exporter.bundle_dict(exporter.node_export(exporter.export_context()))
    resource = next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == str(duplicate.pk))
    assert resource["active"] is False
    assert resource["link"] == [{"other": {"reference": f"Patient/{keep.pk}"}, "type": "replaced-by"}]
    _empty_the_node()
    from records.fhir.importer import import_bundle

    import_bundle(json.loads(json.dumps(bundle)), author="importer")
    assert Patient.objects.get(pk=duplicate.pk).merged_into_id == keep.pk
    assert verification.verify_all().ok


def _manage(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(SILICONHEALTH_HOME=str(home), DJANGO_SETTINGS_MODULE="siliconhealth.settings")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_round_trip_between_two_nodes_with_the_commands(tmp_path):
    """Seed demo data, export it, import it into an empty node, export again: equal resource by
    resource (ignoring server-assigned metadata), and `ledger verify` passes on the new node."""
    source, target = tmp_path / "source", tmp_path / "target"
    for home in (source, target):
        assert _manage(home, "migrate", "-v0").returncode == 0
    assert _manage(source, "seed_demo", "--patients", "12", "--no-users").returncode == 0
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert _manage(source, "fhir", "export", "--out", str(first)).returncode == 0
    imported = _manage(target, "fhir", "import", str(first), "--json")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert json.loads(imported.stdout)["files"][0]["created"] > 100
    assert _manage(target, "fhir", "export", "--out", str(second)).returncode == 0
    a = by_resource(json.loads(first.read_text()), skip=NODE_TYPES)
    b = by_resource(json.loads(second.read_text()), skip=NODE_TYPES)
    assert a.keys() == b.keys()
    assert [key for key in a if a[key] != b[key]] == []
    verify = _manage(target, "ledger", "verify", "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
