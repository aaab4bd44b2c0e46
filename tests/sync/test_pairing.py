"""The pure pairing module: codes, the canonical messages and their HMACs, and hostile input."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.identity import node_id_for
from sync import pairing


def keypair() -> tuple[str, str]:
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return node_id_for(raw), base64.b64encode(raw).decode()


CODE = "7K3QX9M2PA"
KEY = pairing.code_key(CODE)
CHILD = keypair()
PARENT = keypair()


def request_body(key=KEY, nonce="a" * 32, **override) -> bytes:
    fields = dict(node_id=CHILD[0], public_key=CHILD[1], tier="rural_clinic", url="http://10.0.0.3:8000")
    fields.update(override)
    return pairing.make_request(key=key, nonce=nonce, **fields)


def answer_body(request: dict, key=KEY) -> bytes:
    return pairing.make_answer(
        key=key,
        request=request,
        node_id=PARENT[0],
        public_key=PARENT[1],
        tier="urban_centre",
        url="http://10.0.0.2:8000",
        nonce="b" * 32,
    )


def test_new_codes_are_ten_crockford_characters_and_differ():
    codes = {pairing.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 10 and set(c) <= set(pairing.ALPHABET) for c in codes)
    assert not set("ILOU") & set("".join(codes))


def test_a_code_is_shown_grouped_and_read_back_however_it_is_typed():
    assert pairing.grouped(CODE) == "7K3QX-9M2PA"
    assert pairing.normalise(" 7k3qx-9m2pa ") == CODE
    assert pairing.normalise("O1I1L 00000") == "0111100000"
    assert pairing.code_key("7k3qx 9m2pa") == KEY


@pytest.mark.parametrize(
    "typed", ["", "7K3QX9M2P", "7K3QX9M2PAB", "7K3QX9M2PU", "7K3QX9M2P!", "Ａ" * 10, "7" * 10_000, None, 12]
)
def test_a_malformed_code_is_refused(typed):
    with pytest.raises(pairing.PairingError):
        pairing.normalise(typed)


def test_a_request_made_with_the_code_matches_it_and_no_other():
    request = pairing.parse_request(request_body())
    assert request["node_id"] == CHILD[0] and request["public_key"] == CHILD[1]
    assert pairing.matches(KEY, request)
    assert not pairing.matches(pairing.code_key("7K3QX9M2PB"), request)


def test_a_request_with_an_altered_field_no_longer_matches():
    fields = json.loads(request_body())
    fields["url"] = "http://evil.example:8000"
    assert not pairing.matches(KEY, pairing.parse_request(pairing.canonical(fields)))


def test_a_request_whose_node_id_is_not_its_keys_is_refused():
    with pytest.raises(pairing.PairingError, match="derive"):
        pairing.parse_request(request_body(node_id=PARENT[0]))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"v": 1}',
        b"{" + b'"a":' * 2000 + b"1}",
        b"[" * 3000,
        b'{"v":' + b"[" * 1500 + b"]" * 1500 + b"}",
        b" " * (pairing.MAX_BODY_BYTES + 1),
    ],
)
def test_malformed_or_oversized_requests_are_refused(body):
    with pytest.raises(pairing.PairingError):
        pairing.parse_request(body)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": True},
        {"v": "1"},
        {"extra": "x"},
        {"tier": 7},
        {"tier": "x" * 33},
        {"url": "u" * 300},
        {"nonce": "short"},
        {"nonce": "A" * 32},
        {"mac": "0" * 63},
        {"public_key": "!!!"},
        {"public_key": base64.b64encode(b"x" * 31).decode()},
        {"node_id": "sh-XYZ"},
        {"node_id": None},
    ],
)
def test_hostile_fields_are_refused(change):
    fields = json.loads(request_body())
    fields.update(change)
    with pytest.raises(pairing.PairingError):
        pairing.parse_request(pairing.canonical(fields))


def test_the_answer_is_verified_against_the_code_our_key_and_our_nonce():
    request = pairing.parse_request(request_body())
    answer = pairing.verify_answer(answer_body(request), key=KEY, public_key=CHILD[1], nonce="a" * 32)
    assert (answer["node_id"], answer["public_key"], answer["tier"]) == (PARENT[0], PARENT[1], "urban_centre")


def test_a_tampered_answer_is_refused():
    request = pairing.parse_request(request_body())
    fields = json.loads(answer_body(request))
    other = keypair()
    fields["node_id"], fields["public_key"] = other  # a man in the middle swaps in his own key
    with pytest.raises(pairing.PairingError, match="not authenticated"):
        pairing.verify_answer(pairing.canonical(fields), key=KEY, public_key=CHILD[1], nonce="a" * 32)


def test_an_answer_made_with_another_code_is_refused():
    request = pairing.parse_request(request_body())
    wrong = answer_body(request, key=pairing.code_key("0000000000"))
    with pytest.raises(pairing.PairingError, match="not authenticated"):
        pairing.verify_answer(wrong, key=KEY, public_key=CHILD[1], nonce="a" * 32)


def test_an_answer_to_another_request_is_refused():
    earlier = pairing.parse_request(request_body(nonce="c" * 32))
    with pytest.raises(pairing.PairingError, match="another request"):
        pairing.verify_answer(answer_body(earlier), key=KEY, public_key=CHILD[1], nonce="a" * 32)


def test_an_answer_that_echoes_our_own_key_as_the_parents_is_refused():
    request = pairing.parse_request(request_body())
    mirror = pairing.make_answer(
        key=KEY, request=request, node_id=CHILD[0], public_key=CHILD[1], tier="t", url="", nonce="b" * 32
    )
    with pytest.raises(pairing.PairingError, match="own key"):
        pairing.verify_answer(mirror, key=KEY, public_key=CHILD[1], nonce="a" * 32)
