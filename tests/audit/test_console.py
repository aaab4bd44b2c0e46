"""The audit console: who may see it, the ledger browser, verify now, alerts."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from audit import services
from audit.models import Alert, VerificationRun
from ledger import services as ledger_services
from ledger.models import Entry
from records.models import ClinicalNote

from ..records import factories

pytestmark = pytest.mark.django_db

CONSOLE_PAGES = ["audit:overview", "audit:alerts", "audit:network", "audit:reports", "asicproof:devices"]


@pytest.fixture
def eager_celery(settings):
    from siliconhealth.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def tamper_with_a_note():
    note = ClinicalNote.objects.first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE records_clinicalnote SET text = %s WHERE id = %s",
            ["altered", note.pk.hex if connection.vendor == "sqlite" else note.pk],
        )
    return note


@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_an_auditor_sees_every_console_page_with_the_open_alert_count(client, login, name):
    services.raise_alert(kind="tamper", fingerprint="x", title="something")
    login("auditor")
    page = client.get(reverse(name))
    assert page.status_code == 200
    assert 'data-count="1"' in page.content.decode()


@pytest.mark.parametrize("role", ["clinician", "nurse", "clerk"])
@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_clinical_roles_are_refused_the_console(client, login, role, name):
    login(role)
    assert client.get(reverse(name)).status_code == 403


def test_the_old_console_name_still_points_at_the_console(client, login):
    login("admin")
    assert reverse("ledger:console") == reverse("audit:overview")
    assert client.get(reverse("ledger:console")).status_code == 200


def test_the_ledger_browser_pages_by_keyset(client, login):
    patient = factories.patient()
    for i in range(9):
        factories.encounter(patient, note=f"visit {i}")
    origin = Entry.objects.values_list("origin", flat=True).first()
    size = Entry.objects.filter(origin=origin).count()
    login("auditor")
    seen = []
    url = reverse("audit:ledger", args=[origin])
    cursor = ""
    for _ in range(size):
        response = client.get(url + cursor)
        assert response.status_code == 200
        seen += [e["index"] for e in response.context["entries"]]
        if response.context["next_before"] is None:
            break
        cursor = f"?before={response.context['next_before']}"
    assert seen == list(range(size - 1, -1, -1))
    assert size > 50  # more than one page was walked


@pytest.mark.parametrize("cursor", ["-1", "abc", "1e9", "9" * 40, "1;DROP TABLE"])
def test_a_bad_cursor_is_a_clear_400(client, login, cursor):
    factories.patient()
    origin = Entry.objects.values_list("origin", flat=True).first()
    login("auditor")
    assert client.get(reverse("audit:ledger", args=[origin]), {"before": cursor}).status_code == 400


def test_an_unknown_origin_is_404(client, login):
    login("auditor")
    assert client.get(reverse("audit:ledger", args=["nope"])).status_code == 404


def test_checkpoints_show_their_signature_status(client, login):
    factories.patient()
    checkpoint = ledger_services.seal_checkpoint()
    login("auditor")
    page = client.get(reverse("audit:checkpoints", args=[checkpoint.origin]))
    [shown] = page.context["checkpoints"]
    assert shown.signature_ok and shown.proof_count == 0 and shown.work == 0
    type(checkpoint).objects.filter(pk=checkpoint.pk).update(note=checkpoint.note.replace("\n", "\n\n", 1))
    page = client.get(reverse("audit:checkpoints", args=[checkpoint.origin]))
    assert not page.context["checkpoints"][0].signature_ok


def test_verify_now_keeps_the_run_and_raises_one_alert_per_problem(
    client, login, eager_celery, django_capture_on_commit_callbacks
):
    patient = factories.patient()
    factories.encounter(patient, note="first")
    note = tamper_with_a_note()
    login("auditor")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("audit:verify"))
    run = VerificationRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("audit:verification", args=[run.pk])
    assert run.status == "failed" and run.triggered_by_name == "test_auditor"
    assert run.done == run.total == run.entries + run.records > 0
    [problem] = run.problems
    assert problem["kind"] == "record_mismatch" and problem["object_id"] == str(note.pk)
    alert = Alert.objects.get()
    assert alert.kind == "tamper" and alert.status == "open"
    assert alert.evidence["object_id"] == str(note.pk) and alert.evidence["verification_run"] == run.pk
    fragment = client.get(reverse("audit:verification", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert "hx-trigger" not in fragment.content.decode()  # finished: no more polling
    assert "record_mismatch" in fragment.content.decode()
    # The same problem found again touches the same alert.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("audit:verify"))
    assert VerificationRun.objects.count() == 2
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.seen_count == 2


def test_a_running_verification_is_polled_and_not_started_twice(client, login):
    login("auditor")
    first = services.queue_verification(user=None)
    client.post(reverse("audit:verify"))
    assert VerificationRun.objects.count() == 1
    fragment = client.get(reverse("audit:verification", args=[first.pk]), HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in fragment.content.decode()


def test_a_clean_run_passes_and_a_finished_run_is_not_run_again():
    factories.patient()
    run = services.queue_verification(user=None)
    assert services.run_verification(run_id=run.pk).status == "passed"
    tamper_with_a_note() if ClinicalNote.objects.exists() else None
    again = services.run_verification(run_id=run.pk)
    assert again.status == "passed" and again.finished_at == VerificationRun.objects.get().finished_at


def test_the_ledger_verify_command_raises_alerts_and_keeps_its_exit_code(capsys):
    patient = factories.patient()
    factories.encounter(patient, note="first")
    tamper_with_a_note()
    with pytest.raises(SystemExit) as exited:
        call_command("ledger", "verify")
    assert exited.value.code == 1
    assert "PROBLEM record_mismatch" in capsys.readouterr().out
    run = VerificationRun.objects.get()
    assert run.source == "command" and run.status == "failed"
    assert Alert.objects.get().kind == "tamper"


def test_an_alert_is_acknowledged_then_resolved_with_who_and_a_note(client, login):
    alert = services.raise_alert(kind="fork", fingerprint="f", title="fork", evidence={"origin": "o"})
    user = login("auditor")
    page = client.get(reverse("audit:alert", args=[alert.pk])).content.decode()
    assert "origin" in page and "Acknowledge" in page
    client.post(reverse("audit:alert_handle", args=[alert.pk]), {"status": "acknowledged", "note": "looking"})
    alert.refresh_from_db()
    assert (alert.status, alert.handled_by, alert.handling_note) == ("acknowledged", user, "looking")
    client.post(
        reverse("audit:alert_handle", args=[alert.pk]), {"status": "resolved", "note": "peer rekeyed"}
    )
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.handled_at is not None
    listed = client.get(reverse("audit:alerts"), {"status": "resolved"})
    assert [a.pk for a in listed.context["alerts"]] == [alert.pk]
    assert client.get(reverse("audit:alerts"), {"status": "open"}).context["alerts"] == []


@pytest.mark.parametrize(
    "form", [{"status": "open"}, {"status": "deleted"}, {"status": "resolved", "note": "x" * 2001}]
)
def test_a_bad_alert_decision_changes_nothing(client, login, form):
    alert = services.raise_alert(kind="tamper", fingerprint="t", title="t")
    login("auditor")
    client.post(reverse("audit:alert_handle", args=[alert.pk]), form)
    alert.refresh_from_db()
    assert alert.status == "open" and alert.handled_by is None


def test_an_unknown_alert_status_filter_is_a_400(client, login):
    login("auditor")
    assert client.get(reverse("audit:alerts"), {"status": "<x>"}).status_code == 400


def test_a_clinician_cannot_handle_alerts_or_verify(client, login):
    alert = services.raise_alert(kind="tamper", fingerprint="t", title="t")
    login("clinician")
    assert (
        client.post(reverse("audit:alert_handle", args=[alert.pk]), {"status": "resolved"}).status_code == 403
    )
    assert client.post(reverse("audit:verify")).status_code == 403
    assert not VerificationRun.objects.exists()
