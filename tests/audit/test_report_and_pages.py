"""Period reports (parser, CSV, printable page), the ASIC page, the network page, watermark alerts."""

import csv
import datetime as dt
import io
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from asicproof.models import Device, DeviceHealth
from audit import report, services
from audit.models import Alert
from ledger import services as ledger_services
from records.imaging.services import alert_if_tampered
from sync.models import Peer, SyncState

from ..records import factories

TODAY = dt.date(2026, 3, 31)


def test_a_blank_period_is_the_last_30_days():
    assert report.parse_period("", None, today=TODAY) == report.Period(dt.date(2026, 3, 2), TODAY)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-13-01", ""),
        ("2026-02-30", ""),
        ("31/03/2026", ""),
        ("2026-03-01", "2026-02-01"),
        ("2024-01-01", "2026-01-01"),
        ("1999-12-31", "2000-01-01"),
        ("2026-03-01" + "x" * 10_000, ""),
        ("２０２６-03-01", ""),
        ("2026-03-01'; DROP TABLE x;--", ""),
        ("", "2026-03-01"),
    ],
)
def test_a_bad_period_is_refused_with_a_reason(start, end):
    with pytest.raises(report.PeriodError):
        report.parse_period(start, end, today=TODAY)


def test_csv_cells_cannot_become_spreadsheet_formulas():
    assert report._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert report._cell("@SUM") == "'@SUM" and report._cell("plain") == "plain" and report._cell(None) == ""


@pytest.mark.django_db
def test_the_report_counts_the_period_and_embeds_the_signed_checkpoint(client, login):
    patient = factories.patient()
    factories.encounter(patient, note="visit")
    checkpoint = ledger_services.seal_checkpoint()
    services.raise_alert(kind="tamper", fingerprint="r", title="=cmd|' /C calc'!A0")
    services.record_access(user=None, action="chart_read", patient_id=patient.pk)
    login("auditor")
    today = timezone.localdate().isoformat()
    page = client.get(reverse("audit:report_print"), {"start": today, "end": today})
    assert page.status_code == 200
    assert page.context["entries_total"] == checkpoint.size
    assert page.context["accesses_total"] == 1
    assert checkpoint.note in page.content.decode().replace("&#x27;", "'")
    response = client.get(reverse("audit:report_csv"), {"start": today, "end": today})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert ["entries_written", checkpoint.origin, str(checkpoint.size)] == rows[4][:3]
    assert any(r[0] == "signed_checkpoint_note" and r[3] == checkpoint.note for r in rows)
    assert any(r[0] == "alert" and r[3].startswith("'=cmd") for r in rows)
    assert ["accesses", "chart_read", "1", ""] in rows
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    earlier = client.get(reverse("audit:report_print"), {"start": yesterday, "end": yesterday})
    assert earlier.context["entries_total"] == 0 and earlier.context["alerts"] == []


@pytest.mark.django_db
def test_a_bad_report_period_is_a_400_that_says_why(client, login):
    login("auditor")
    response = client.get(reverse("audit:report_csv"), {"start": "2026-02-30"})
    assert response.status_code == 400 and b"not a real date" in response.content
    assert client.get(reverse("audit:report_print"), {"start": "nope"}).status_code == 400


@pytest.mark.django_db
def test_the_asic_page_shows_health_and_plots_in_a_fixed_number_of_queries(
    client, login, django_assert_max_num_queries
):
    now = timezone.now()
    for n, worker in enumerate(["lv06", "s9", "s19"]):
        device = Device.objects.create(worker=worker, model=f"model {n}", status="approved", last_seen=now)
        DeviceHealth.objects.bulk_create(
            DeviceHealth(
                device=device,
                at=now - dt.timedelta(hours=h),
                reachable=True,
                hashrate_ghs=500.0 + h,
                temperature_c=55.0,
                power_w=13.0,
                accepted=10,
                rejected=2,
            )
            for h in range(0, 200, 2)
        )
    login("auditor")
    with django_assert_max_num_queries(14):
        page = client.get(reverse("asicproof:devices"))
    body = page.content.decode()
    assert body.count('class="plot"') == 12  # 2 metrics x 2 windows x 3 devices
    assert "Hash rate, 24 h: 500 GH/s" in body and "55 °C" in body and "13 W" in body


@pytest.mark.django_db
def test_the_network_page_lists_every_node_with_sync_facts(client, login):
    factories.patient()
    parent = Peer.objects.create(
        node_id="p" * 64, public_key="A" * 43 + "=", tier="urban_centre", role="parent"
    )
    child = Peer.objects.create(
        node_id="c" * 64, public_key="A" * 43 + "=", tier="mobile_point", role="child", revoked=True
    )
    SyncState.objects.create(
        peer=parent, last_success_at=timezone.now(), bytes_sent=2048, bytes_received=2048, clock_offset=3600
    )
    SyncState.objects.create(peer=child, rounds_failed=3, last_error="timed out")
    login("admin")
    page = client.get(reverse("audit:network"))
    nodes = {n["node_id"]: n for n in page.context["nodes"]}
    assert nodes["p" * 64]["bytes_moved"] == 4096 and nodes["c" * 64]["revoked"]
    assert nodes["c" * 64]["failures"] == 3
    assert sum(1 for n in nodes.values() if n["is_self"]) == 1
    body = page.content.decode()
    assert '<svg class="tree"' in body and body.count("<line ") == 2  # self under parent, child under self
    assert nodes["p" * 64]["clock_offset"] == 3600 and "+3600 s" in body


@pytest.mark.django_db
def test_a_tampered_image_check_raises_one_watermark_alert():
    tampered = SimpleNamespace(
        ok=True, record="r-1", damaged_fraction=0.12, entry_matches=True, as_dict=lambda: {"record": "r-1"}
    )
    clean = SimpleNamespace(ok=True, record="r-1", damaged_fraction=0.0, entry_matches=True, as_dict=dict)
    foreign = SimpleNamespace(ok=False, record=None, damaged_fraction=None, entry_matches=None, as_dict=dict)
    assert alert_if_tampered(check=clean, content=b"a", source="t") is None
    assert alert_if_tampered(check=foreign, content=b"a", source="t") is None
    alert = alert_if_tampered(check=tampered, content=b"img", source="test")
    again = alert_if_tampered(check=tampered, content=b"img", source="test")
    assert alert.pk == again.pk and alert.kind == "watermark" and Alert.objects.count() == 1
    assert (
        alert.evidence["damaged_fraction"]
        if "damaged_fraction" in alert.evidence
        else alert.evidence["record"]
    )
    relabelled = SimpleNamespace(
        ok=True, record="r-2", damaged_fraction=0.0, entry_matches=False, as_dict=lambda: {"record": "r-2"}
    )
    assert "does not match" in alert_if_tampered(check=relabelled, content=b"x", source="t").title
