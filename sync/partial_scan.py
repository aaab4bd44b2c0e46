"""Which entries of a log a partial child is sent (the parent's side, see partial.py): those about the
records of its patients (partial_patients.py) from its cursor on, found through the object_id index or,
for a large child, by reading the log a bounded span per request; and the older entries of patients
referred to it since its last request."""

from __future__ import annotations

from ledger.models import Entry

from .models import Peer, ServedPatient
from .partial_patients import _records_of, _with_merges

_SCAN_PAGE = 5_000
# Up to this many wanted objects, entries are found through the object_id index, not by reading the log.
_LOOKUP_MAX_OBJECTS = 20_000
_LOOKUP_CHUNK = 500  # object ids per IN list
# Past that, the log is read; one request reads at most this many log positions in all (its origins
# together) and the child asks again from where it stopped: a scan of 2.44M entries in one request
# had outlived gunicorn's 30 s worker timeout.
SCAN_SPAN_PER_REQUEST = 200_000
_REFERRAL_CHUNK = 64  # referrals looked up together for their older entries (halved when too many)


def _scan(origin: str, start: int, end: int, wanted: set, budget: int, span: int) -> tuple[list[int], int]:
    """Indexes in [start, end) of entries about `wanted` objects, at most `budget`; and where the
    search stopped (end when it got through). Reading the log covers at most `span` positions."""
    if len(wanted) <= _LOOKUP_MAX_OBJECTS:
        return _scan_by_object(origin, start, end, wanted, budget)
    return _scan_by_pages(origin, start, min(end, start + max(span, 0)), wanted, budget)


def _scan_by_object(origin: str, start: int, end: int, wanted: set, budget: int) -> tuple[list[int], int]:
    # A child serving a few thousand patients of a hub holding millions of entries: look its objects up
    # through the object_id index instead of reading the whole log (a first pull took minutes at 2.4M).
    # No ORDER BY/LIMIT per chunk: with them a planner may walk the (origin, index) index instead.
    ids = list(wanted)
    indexes: list[int] = []
    for first in range(0, len(ids), _LOOKUP_CHUNK):
        indexes += Entry.objects.filter(
            object_id__in=ids[first : first + _LOOKUP_CHUNK], origin=origin, index__gte=start, index__lt=end
        ).values_list("index", flat=True)
    indexes.sort()
    if len(indexes) > budget:
        return indexes[:budget], indexes[budget]
    return indexes, end


def _scan_by_pages(origin: str, start: int, end: int, wanted: set, budget: int) -> tuple[list[int], int]:
    found, position = [], start
    while position < end:
        page = list(
            Entry.objects.filter(origin=origin, index__gte=position, index__lt=end)
            .order_by("index")
            .values_list("index", "object_id")[:_SCAN_PAGE]
        )
        if not page:
            return found, end
        for index, object_id in page:
            if object_id in wanted:
                if len(found) >= budget:
                    return found, index
                found.append(index)
        position = page[-1][0] + 1
    return found, end


def _older_of_referrals(
    peer: Peer, referrals: int, stops: dict[str, int], budget: int
) -> tuple[dict[str, list[int]], int, bool]:
    """Entries behind the child's cursor (index < stops[origin]) of the patients referred to it after
    position `referrals`, taken referral by referral in order, as many whole referrals as fit in `budget`
    (at least one, so that a pull always moves on). Returns (origin -> indexes, the last referral sent
    whole, whether referrals are left). Sent whole, a referral never has to be sent again: the child
    moves its referral position on with each answer it applies."""
    pending = list(
        ServedPatient.objects.filter(peer=peer, pk__gt=referrals)
        .order_by("pk")
        .values_list("pk", "patient_id")
    )
    older: dict[str, list[int]] = {}
    position, used, size = referrals, 0, _REFERRAL_CHUNK
    while pending:
        chunk = pending[:size]
        records = _records_of(_with_merges({patient for _, patient in chunk}))
        found = {
            origin: _scan_by_object(origin, 0, stop, records, 1 << 62)[0]
            for origin, stop in stops.items()
            if stop
        }
        count = sum(len(indexes) for indexes in found.values())
        if used and used + count > budget or not used and count > budget and len(chunk) > 1:
            if len(chunk) == 1:
                break  # the next referral alone would overflow this answer: the next one takes it
            size = max(1, len(chunk) // 2)
            continue
        for origin, indexes in found.items():
            older[origin] = sorted(older.get(origin, []) + indexes)
        used += count
        position, pending = chunk[-1][0], pending[len(chunk) :]
    return older, position, bool(pending)
