import pytest

from accounts.models import User
from audit import selectors, services
from audit.models import AccessEvent, AccessLogHead

pytestmark = pytest.mark.django_db
PATIENT = "7f1d6f1c-4a51-4c3e-9e1e-6a3f2a9b0c11"


@pytest.fixture
def clinician():
    return User.objects.create_user(username="amina", password="x", role="clinician")


def _three_events(user):
    return [
        services.record_access(user=user, action="chart_read", patient_id=PATIENT),
        services.record_access(user=user, action="search", detail={"q": "malaria"}),
        services.record_access(user=user, action="export", object_type="Bundle", object_id="x"),
    ]


def test_events_chain_and_verify(clinician):
    events = _three_events(clinician)
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    check = selectors.verify_access_chain()
    assert check.ok and check.checked == 3


def test_edited_event_is_found(clinician):
    events = _three_events(clinician)
    AccessEvent.objects.filter(id=events[1].id).update(username="someone-else")
    check = selectors.verify_access_chain()
    assert not check.ok and check.event_id == events[1].id and "edited" in check.problem


def test_deleted_middle_event_is_found(clinician):
    events = _three_events(clinician)
    AccessEvent.objects.filter(id=events[1].id).delete()
    check = selectors.verify_access_chain()
    assert not check.ok and check.event_id == events[2].id and "missing" in check.problem


def test_deleted_last_event_is_found_by_the_head(clinician):
    events = _three_events(clinician)
    AccessEvent.objects.filter(id=events[2].id).delete()
    check = selectors.verify_access_chain()
    assert not check.ok and "ends early" in check.problem
    assert AccessLogHead.objects.get().count == 3


def test_unknown_action_is_refused_and_nothing_written(clinician):
    with pytest.raises(ValueError):
        services.record_access(user=clinician, action="peek")
    assert AccessEvent.objects.count() == 0


def test_filters_by_user_and_patient(clinician):
    _three_events(clinician)
    other = User.objects.create_user(username="baraka", password="x", role="clerk")
    services.record_access(user=other, action="chart_read", patient_id=PATIENT)
    seen = selectors.accesses(patient_id=PATIENT)
    assert sorted(e.username for e in seen) == ["amina", "baraka"]
    assert selectors.accesses(username="baraka").count() == 1
