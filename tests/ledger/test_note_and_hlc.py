import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger import hlc, note
from ledger.canonical import CanonicalError, canonical_json


def test_note_round_trip_and_tamper():
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    body = note.format_checkpoint("example/log", 42, b"\x07" * 32)
    signed = note.sign_note(body, "example/log", key)
    assert note.open_note(signed, "example/log", public) == body
    assert note.parse_checkpoint(body).size == 42
    with pytest.raises(note.NoteError, match="altered"):
        note.open_note(signed.replace("42", "43"), "example/log", public)
    with pytest.raises(note.NoteError, match="no signature"):
        note.open_note(signed, "other/log", public)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(note.NoteError):
        note.open_note(signed, "example/log", other)


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _other_spelling(text: str) -> str:
    """The same bytes, base64-spelled with a nonzero unused bit in the last character (before the '=')."""
    last = text.rstrip("=")
    spelled = last[:-1] + _ALPHABET[_ALPHABET.index(last[-1]) | 1] + text[len(last) :]
    assert spelled != text and base64.b64decode(spelled) == base64.b64decode(text)
    return spelled


def test_a_signature_or_root_spelled_another_way_is_refused():
    # Lenient base64 would accept both spellings: a changed byte of a proof bundle that still verified.
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    body = note.format_checkpoint("example/log", 42, b"\x07" * 32)
    signed = note.sign_note(body, "example/log", key)
    signature = signed.rstrip("\n").rsplit(" ", 1)[1]
    with pytest.raises(note.NoteError, match="canonical"):
        note.open_note(signed.replace(signature, _other_spelling(signature)), "example/log", public)
    root = body.split("\n")[2]
    with pytest.raises(note.NoteError, match="canonical"):
        note.parse_checkpoint(body.replace(root, _other_spelling(root)))


@pytest.mark.parametrize(
    "body", ["x\n", "x\n-1\nAAAA\n", "x\n01\n" + "A" * 44 + "\n", "x\n5\nnot base64!\n", "x\n5\nAAAA\n"]
)
def test_malformed_checkpoints_are_refused(body):
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(body)


def test_verifier_key_format():
    public = b"\x02" * 32
    name, key_id, key = note.verifier_key("example/log", public).split("+")
    assert name == "example/log" and len(key_id) == 8 and key.startswith("AQIC")


def test_canonical_json_refuses_floats():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    with pytest.raises(CanonicalError):
        canonical_json({"temperature": 38.5})


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=50))
def test_hlc_ticks_increase_even_when_the_wall_clock_goes_back(walls):
    stamp = 0
    for wall in walls:
        new = hlc.tick(stamp, wall)
        assert new > stamp
        stamp = new


@given(st.integers(0, 10**13), st.integers(0, 2**16 - 1), st.integers(0, 10**13))
def test_hlc_tick_is_the_clock_rule_on_unpacked_parts(last_wall, last_counter, now):
    # tick works on the packed integer; it must equal the rule stated on (ms, counter): the wall clock
    # if it moved past the last timestamp, else the counter plus one, carrying into the millisecond.
    last = hlc.pack(last_wall, last_counter)
    if now > last_wall:
        expected = (now, 0)
    elif last_counter == 2**16 - 1:
        expected = (last_wall + 1, 0)
    else:
        expected = (last_wall, last_counter + 1)
    assert hlc.unpack(hlc.tick(last, now)) == expected


@given(st.integers(0, 10**13), st.integers(0, 2**40), st.integers(0, 10**13))
def test_hlc_receive_is_after_both(last_wall, remote, now):
    last = hlc.pack(last_wall, 0)
    received = hlc.receive(last, remote, now)
    assert received > last and received > remote
