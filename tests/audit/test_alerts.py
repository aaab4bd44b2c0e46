import pytest

from accounts.models import User
from audit import selectors, services
from audit.models import Alert

pytestmark = pytest.mark.django_db


def test_same_problem_touches_one_alert():
    first = services.raise_alert(kind="tamper", fingerprint="row:Patient:1", title="row edited")
    again = services.raise_alert(kind="tamper", fingerprint="row:Patient:1", title="row edited")
    assert first.id == again.id and again.seen_count == 2
    assert selectors.open_alert_count() == 1


def test_resolved_alert_reopens_when_found_again():
    auditor = User.objects.create_user(username="aud", password="x", role="auditor")
    alert = services.raise_alert(kind="fork", fingerprint="fork:sh-1", title="fork", evidence={"a": "1"})
    services.handle_alert(alert=alert, user=auditor, status="resolved", note="checked")
    assert selectors.open_alert_count() == 0
    reopened = services.raise_alert(kind="fork", fingerprint="fork:sh-1", title="fork")
    assert reopened.status == Alert.Status.OPEN and reopened.handled_by == auditor


def test_bad_kind_and_status_are_refused():
    with pytest.raises(ValueError):
        services.raise_alert(kind="gossip", fingerprint="x", title="x")
    alert = services.raise_alert(kind="tamper", fingerprint="y", title="y")
    with pytest.raises(ValueError):
        services.handle_alert(alert=alert, user=None, status="deleted")
    assert Alert.objects.count() == 1
