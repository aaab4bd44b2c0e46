"""Hybrid logical clock (Kulkarni et al. 2014): wall-clock milliseconds plus a counter.

Order across nodes comes from these timestamps, never from wall clocks alone: a node whose clock
jumps backwards keeps issuing increasing timestamps, and receiving a timestamp from the future
moves the clock forward so causality is kept. Encoded as one sortable integer: ms << 16 | counter.
"""

COUNTER_BITS = 16
_COUNTER_MASK = (1 << COUNTER_BITS) - 1


def pack(wall_ms: int, counter: int) -> int:
    if counter > _COUNTER_MASK:
        # The counter overflowed within one millisecond: borrow the next millisecond.
        return ((wall_ms + 1) << COUNTER_BITS) | 0
    return (wall_ms << COUNTER_BITS) | counter


def unpack(stamp: int) -> tuple[int, int]:
    return stamp >> COUNTER_BITS, stamp & _COUNTER_MASK


def tick(last: int, now_ms: int) -> int:
    """Next timestamp for a local event: (now_ms, 0) if the wall clock moved past the last one, else
    the last one's counter plus one (an overflowing counter carries into the millisecond, as pack
    does). In the packed encoding that is simply the larger of last + 1 and (now_ms, 0); it runs once
    per appended entry."""
    return max(last + 1, now_ms << COUNTER_BITS)


def receive(last: int, remote: int, now_ms: int) -> int:
    """Next timestamp after receiving an event stamped `remote`."""
    last_ms, last_counter = unpack(last)
    remote_ms, remote_counter = unpack(remote)
    wall = max(last_ms, remote_ms, now_ms)
    if wall == last_ms == remote_ms:
        counter = max(last_counter, remote_counter) + 1
    elif wall == last_ms:
        counter = last_counter + 1
    elif wall == remote_ms:
        counter = remote_counter + 1
    else:
        counter = 0
    return pack(wall, counter)
