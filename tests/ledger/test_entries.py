import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from ledger.entries import entry_bytes, entry_bytes_from_parts, envelope

text = st.text(max_size=30)
payloads = st.dictionaries(
    text, st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), text), max_size=8
)


@given(
    origin=text,
    index=st.integers(0, 2**40),
    kind=text,
    object_type=text,
    payload=payloads,
    author=text,
    hlc=st.integers(0, 2**62),
)
def test_fast_entry_bytes_equal_canonical_envelope(origin, index, kind, object_type, payload, author, hlc):
    object_id = str(uuid.UUID(int=index))
    slow = entry_bytes(
        envelope(
            origin=origin,
            index=index,
            kind=kind,
            object_type=object_type,
            object_id=object_id,
            payload=payload,
            author=author,
            hlc=hlc,
        )
    )
    fast = entry_bytes_from_parts(
        origin, index, kind, object_type, object_id, canonical_json(payload).decode(), author, hlc
    )
    assert fast == slow
    assert json.loads(fast)["payload"] == payload


def test_a_field_that_looks_like_the_payload_key_cannot_confuse_the_encoding():
    tricky = '"payload":0'
    slow = entry_bytes(
        envelope(
            origin=tricky,
            index=1,
            kind=tricky,
            object_type=tricky,
            object_id=tricky,
            payload={"x": tricky},
            author=tricky,
            hlc=2,
        )
    )
    fast = entry_bytes_from_parts(
        tricky, 1, tricky, tricky, tricky, canonical_json({"x": tricky}).decode(), tricky, 2
    )
    assert fast == slow
