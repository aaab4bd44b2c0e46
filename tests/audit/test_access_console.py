"""The access-log pages, the FHIR AuditEvent export and the `audit` command."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from fhir.resources.R4B.bundle import Bundle

from accounts.models import User
from audit import views_access
from audit.models import AccessEvent
from audit.services import record_access
from tests.records import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def readers():
    return {
        name: User.objects.create(username=name, role=role)
        for name, role in (("amina", "clinician"), ("baraka", "nurse"))
    }


def _read(user, patient, action="chart_read"):
    return record_access(user=user, action=action, patient_id=patient.pk, object_type="Patient")


def test_auditor_sees_who_has_seen_a_patient(client, login, readers):
    first, second = factories.patient(), factories.patient(given_name="Zawadi", phone="+255700999111")
    _read(readers["amina"], first)
    _read(readers["baraka"], second)
    login("auditor")
    page = client.get(reverse("audit_access:log"), {"patient": first.patient_number}).content.decode()
    assert "amina" in page and "baraka" not in page
    page = client.get(reverse("audit_access:log"), {"user": "baraka"}).content.decode()
    assert second.patient_number in page and first.patient_number not in page


def test_the_chart_links_auditors_to_its_access_log(client, login):
    patient = factories.patient()
    login("auditor")
    page = client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    assert f"{reverse('audit_access:log')}?patient={patient.pk}" in page
    client.logout()
    login("nurse")
    page = client.get(reverse("records:chart", args=[patient.pk])).content.decode()
    assert reverse("audit_access:log") not in page


def test_keyset_pages_cover_every_event_once(client, login, readers, monkeypatch):
    monkeypatch.setattr(views_access, "PAGE_SIZE", 4)
    patient = factories.patient()
    events = [_read(readers["amina"], patient) for _ in range(10)]
    login("admin")
    seen, url, params = [], reverse("audit_access:log"), {"user": "amina"}
    for _ in range(5):
        response = client.get(url, params)
        rows = response.context["rows"]
        seen += [event.id for event, _number in rows]
        if not response.context["next_before"]:
            break
        params = {"user": "amina", "before": response.context["next_before"]}
    assert seen == sorted((e.id for e in events), reverse=True)


@pytest.mark.parametrize("params", [{"patient": "no-such-patient"}, {"before": "'; DROP TABLE"}])
def test_bad_filters_get_a_clear_error(client, login, params):
    login("auditor")
    response = client.get(reverse("audit_access:log"), params)
    assert response.status_code == 400
    assert response.context["filters"].error


def test_chain_status_is_shown_and_a_break_is_visible(client, login, readers):
    patient = factories.patient()
    events = [_read(readers["amina"], patient) for _ in range(3)]
    login("auditor")
    fragment = client.get(reverse("audit_access:chain"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-ok="1"' in fragment and "<html" not in fragment
    AccessEvent.objects.filter(id=events[1].id).update(remote_addr="6.6.6.6")
    page = client.get(reverse("audit_access:chain")).content.decode()
    assert 'data-ok="0"' in page and f"#{events[1].id}" in page


def test_anchor_now_from_the_page(client, login, readers):
    _read(readers["amina"], factories.patient())
    login("auditor")
    response = client.post(reverse("audit_access:anchor"))
    assert response.status_code == 302
    fragment = client.get(reverse("audit_access:chain"), HTTP_HX_REQUEST="true").content.decode()
    assert "covers 1 events" in fragment


@pytest.mark.parametrize("role", ["clinician", "nurse", "clerk"])
def test_clinic_roles_are_refused_the_access_log(client, login, role):
    login(role)
    for name in ("log", "chain", "export"):
        assert client.get(reverse(f"audit_access:{name}")).status_code == 403
    assert client.post(reverse("audit_access:anchor")).status_code == 403


def _bundle_from(response) -> dict:
    return json.loads(b"".join(response.streaming_content))


def test_export_is_a_valid_fhir_bundle_of_audit_events(client, login, readers):
    patient = factories.patient()
    _read(readers["amina"], patient)
    _read(readers["baraka"], patient, action="image_read")
    record_access(user=readers["amina"], action="search", detail={"query": "malaria"})
    login("auditor")
    response = client.get(reverse("audit_access:export"), {"patient": str(patient.pk)})
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = _bundle_from(response)
    Bundle.model_validate(bundle)  # raises if any AuditEvent (or the Bundle) is not valid R4
    assert bundle["type"] == "collection"
    events = [entry["resource"] for entry in bundle["entry"]]
    assert [e["agent"][0]["who"]["identifier"]["value"] for e in events] == ["amina", "baraka"]
    assert all(e["entity"][0]["what"]["reference"] == f"Patient/{patient.pk}" for e in events)
    # The export itself is an access, recorded after the rows it exported were chosen.
    assert AccessEvent.objects.latest("id").object_type == "AccessLog"


def test_audit_command_exports_and_verifies(tmp_path, readers, capsys):
    patient = factories.patient()
    _read(readers["amina"], patient)
    _read(readers["baraka"], patient)
    out = tmp_path / "audit.json"
    call_command("audit", "accesses", "--export", str(out), "--user", "amina", "--json")
    summary = json.loads(capsys.readouterr().out)
    assert summary["audit_events"] == 1
    bundle = json.loads(out.read_text())
    Bundle.model_validate(bundle)
    assert bundle["entry"][0]["resource"]["agent"][0]["who"]["display"] == "amina"

    call_command("audit", "verify-chain", "--json")
    assert json.loads(capsys.readouterr().out)["ok"] is True
    AccessEvent.objects.filter(username="baraka").update(role="auditor")
    with pytest.raises(SystemExit) as exit_info:
        call_command("audit", "verify-chain")
    assert exit_info.value.code == 1
    assert "PROBLEM" in capsys.readouterr().out


def test_audit_command_refuses_bad_arguments(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as error:
        call_command("audit", "accesses", "--patient", "nobody")
    assert error.value.returncode == 2
    with pytest.raises(CommandError) as error:
        call_command("audit", "accesses", "--export", str(tmp_path / "missing-dir" / "x.json"))
    assert error.value.returncode == 2
