"""Time-ordered record ids (records.ids): the RFC 9562 layout of version 7, their order, and that new
records get them (so that inserts land at the tail of the record and ledger b-trees)."""

import os
import time
import uuid

import pytest

from ledger.models import Entry
from records import ids
from records.models import Patient

from . import factories


def test_rfc_9562_appendix_a8_example():
    # RFC 9562 A.8: 2022-02-22 19:22:22 UTC, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
    made = ids.uuid7_from(0x017F22E279B0, 0xCC3 << 62 | 0x18C4DC0C0C07398F)
    assert made == uuid.UUID("017F22E2-79B0-7CC3-98C4-DC0C0C07398F")
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert made.int >> 80 == 1645557742000  # the milliseconds are the first 48 bits


def test_new_ids_are_version_7_with_the_current_time_and_random_bits():
    before = time.time_ns() // 1_000_000
    made = [ids.uuid7() for _ in range(100)]
    after = time.time_ns() // 1_000_000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert all(before <= u.int >> 80 <= after + 1 for u in made)  # +1: a borrowed millisecond
    assert len({u.int & (1 << 62) - 1 for u in made}) == 100  # rand_b differs


def test_successive_ids_increase_as_integers_bytes_and_text():
    # Thousands per millisecond: the same-millisecond path. SQLite stores the hex text, PostgreSQL the bytes.
    made = [ids.uuid7() for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert [u.bytes for u in made] == sorted(u.bytes for u in made)
    assert [u.hex for u in made] == sorted(u.hex for u in made)


def test_ids_keep_increasing_when_the_clock_steps_back(monkeypatch):
    first = ids.uuid7()
    monkeypatch.setattr(ids.time, "time_ns", lambda: (first.int >> 80) * 1_000_000 - 10**12)
    later = [ids.uuid7() for _ in range(3)]
    assert first < later[0] < later[1] < later[2]
    assert all(u.int >> 80 == first.int >> 80 for u in later)  # kept the last time, not the stepped-back one


def test_exhausted_random_bits_borrow_the_next_millisecond(monkeypatch):
    ms = time.time_ns() // 1_000_000 + 10_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: ms * 1_000_000)
    monkeypatch.setattr(ids, "_last_ms", ms)
    monkeypatch.setattr(ids, "_last_rand", ids._RAND_MAX)
    made = ids.uuid7()
    assert made.int >> 80 == ms + 1 and made.version == 7


@pytest.mark.parametrize("unix_ms, rand", [(-1, 0), (1 << 48, 0), (0, -1), (0, 1 << 74)])
def test_out_of_range_parts_are_refused(unix_ms, rand):
    with pytest.raises(ValueError, match="range"):
        ids.uuid7_from(unix_ms, rand)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_step_from_its_parents_last_id():
    ids.uuid7()
    pid = os.fork()
    if pid == 0:  # the child: its state must have been reset by the at-fork hook
        os._exit(0 if ids._last_ms == -1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.django_db
def test_new_records_and_their_entries_get_increasing_version_7_ids():
    patient = factories.patient()
    factories.encounter(patient)
    factories.encounter(patient)
    object_ids = list(Entry.objects.order_by("index").values_list("object_id", flat=True))
    assert len(object_ids) > 5
    assert all(i.version == 7 for i in object_ids)
    # Written in the order they were made, so each insert lands at the tail of the (object_id, hlc) index.
    assert object_ids == sorted(object_ids)
    assert Patient.objects.get().pk == object_ids[0]
