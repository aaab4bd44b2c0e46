"""record_payload_text (the write path's canonical text) memoizes the text of repeated datetimes and
ids: it must still give canonical_json(record_payload(obj)) byte for byte, whatever the memo holds."""

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal

from ledger.canonical import canonical_json
from records import canonical
from records.canonical import record_payload, record_payload_text
from records.models import Encounter, Observation

NAIROBI = zoneinfo.ZoneInfo("Africa/Nairobi")


def _observation(patient_id, encounter_id, when, created):
    return Observation(
        id=uuid.uuid4(),
        origin="sh-node",
        created_at=created,
        updated_at=created,
        patient_id=patient_id,
        encounter_id=encounter_id,
        category="vital-signs",
        code="8310-5",
        display="Body temperature",
        value_decimal=Decimal("37.2"),
        unit="Cel",
        effective_at=when,
    )


def test_repeated_and_equal_values_give_the_canonical_text():
    patient, encounter = uuid.uuid4(), uuid.uuid4()
    utc = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
    same_instant = utc.astimezone(NAIROBI)  # equal to utc, written the same way in UTC
    rows = [_observation(patient, encounter, utc, utc) for _ in range(3)]
    rows += [_observation(patient, str(encounter), same_instant, same_instant) for _ in range(3)]
    rows.append(_observation(patient, None, utc + dt.timedelta(microseconds=1), utc))
    texts = [record_payload_text(row) for row in rows]
    assert texts == [canonical_json(record_payload(row)).decode() for row in rows]
    assert '"effective_at":"2026-03-01T09:30:15.123456Z"' in texts[4]
    assert '"encounter_id":null' in texts[-1]


def test_the_memo_stays_bounded_and_right_after_it_is_cleared():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(3 * canonical._MEMO_LIMIT):
        when = start + dt.timedelta(seconds=n)
        row = Encounter(
            id=uuid.uuid4(),
            origin="sh-node",
            created_at=when,
            updated_at=when,
            patient_id=uuid.uuid4(),
            kind="outpatient",
            started_at=when,
            practitioner="nurse",
        )
        assert record_payload_text(row) == canonical_json(record_payload(row)).decode()
    assert all(len(memo) <= canonical._MEMO_LIMIT for memo in canonical._MEMOS.values())
