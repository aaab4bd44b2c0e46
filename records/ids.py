"""Ids of new clinical objects: time-ordered UUIDs, version 7 of RFC 9562 (Python 3.11 has no uuid.uuid7).

Why: a random (version 4) id puts every insert on a random page of each b-tree keyed by it (the record
table's primary key, the ledger's (object_id, hlc) index), so each commit rewrites pages all over the
file (on SQLite, WAL frames per commit). A version 7 id starts with the Unix time in milliseconds, so new
rows land at the tail of those b-trees, as the log's own (origin, index) key does.

Privacy: the id shows when the record was created (to the millisecond) to whoever sees it: chart URLs,
FHIR ids, sync peers, proof bundles, keyed image watermarks. Each of those already carries that time or
is shown only to someone who can read it: the record's created_at, its ledger entry's HLC and created_at
go with it to the chart, the FHIR resource's meta, every sync peer and every proof bundle. The id is not
a secret and not an access check (the 74 random bits still make it unguessable, but access is decided by
permissions, never by knowing an id); tokens, nonces and keys stay fully random and are not made here.

Pure Python, no Django import, so models, services, imports and tests can all use it.
"""

import os
import secrets
import threading
import time
import uuid

_RAND_BITS = 74  # rand_a (12 bits) and rand_b (62 bits)
_RAND_MAX = (1 << _RAND_BITS) - 1
_STEP_BITS = 32  # a same-millisecond id adds 1..2**32 to the last one's random bits

_lock = threading.Lock()
_last_ms = -1
_last_rand = 0


def uuid7_from(unix_ms: int, rand: int) -> uuid.UUID:
    """The version 7 UUID with these 48 bits of Unix milliseconds and 74 random bits (RFC 9562 5.7):
    unix_ts_ms (48) | ver 0b0111 (4) | rand_a (12) | var 0b10 (2) | rand_b (62)."""
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError(f"unix_ms out of the 48-bit range: {unix_ms}")
    if not 0 <= rand <= _RAND_MAX:
        raise ValueError(f"rand out of the 74-bit range: {rand}")
    rand_a, rand_b = rand >> 62, rand & ((1 << 62) - 1)
    return uuid.UUID(int=unix_ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def uuid7() -> uuid.UUID:
    """A new version 7 UUID. Ids made by one process increase strictly (RFC 9562 6.2, method 2: within
    one millisecond, or if the clock steps back, the random bits grow by a random step), so even rows
    made in one burst append to the b-trees; across processes they are ordered to the millisecond."""
    global _last_ms, _last_rand
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            ms, rand = now_ms, secrets.randbits(_RAND_BITS)
        else:
            ms, rand = _last_ms, _last_rand + 1 + secrets.randbits(_STEP_BITS)
            if rand > _RAND_MAX:  # the random bits ran out: borrow the next millisecond
                ms, rand = _last_ms + 1, secrets.randbits(_RAND_BITS)
        _last_ms, _last_rand = ms, rand
    return uuid7_from(ms, rand)


def _forget_last() -> None:
    # A forked worker (gunicorn, Celery) must not step from its parent's last id: two children would
    # then share the same starting point and only 32 random bits would tell their ids apart.
    global _last_ms, _last_rand, _lock
    _lock = threading.Lock()
    _last_ms, _last_rand = -1, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_last)
