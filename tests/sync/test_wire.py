"""The sync wire format on its own (no Django): hostile input is refused with a clear reason."""

import copy
import json

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from asicproof.stratum.header import BIP320_MASK
from asicproof.stratum.jobs import job_from_checkpoint
from asicproof.stratum.miner import scan
from asicproof.stratum.proof import make_proof
from asicproof.stratum.share import target_for_difficulty
from ledger import note
from sync import wire

from . import bundle_files
from .fakes import FakeLog

NOW = 1_800_000_000


def mined_proof(checkpoint_note: str, node_id: str, difficulty: str = "0.00001") -> dict:
    job = job_from_checkpoint(note.note_hash(checkpoint_note), node_id, "1", height=1, ntime=NOW)
    en1, en2, bits = bytes.fromhex("a1b2c3d4"), bytes.fromhex("00000001"), 0x2000
    prefix = job.share_header(en1, en2, job.ntime, 0, bits, BIP320_MASK)[:76]
    target = target_for_difficulty(difficulty)
    nonce = next(hit[0][0] for base in range(0, 2**32, 4096) if (hit := scan(prefix, base, 4096, target)))
    return make_proof(
        job,
        extranonce1=en1,
        extranonce2=en2,
        ntime=job.ntime,
        nonce=nonce,
        version_bits=bits,
        version_mask=BIP320_MASK,
        difficulty=difficulty,
        worker="lv06-1",
    )


@pytest.fixture
def log():
    fake = FakeLog()
    fake.add(10)
    return fake


# --- compression and strict JSON -------------------------------------------------------------------------


def test_compress_round_trip_is_canonical():
    document = {"b": [1, 2, {"z": "é", "a": None}], "a": True}
    data = wire.compress(document)
    assert wire.decompress(data) == b'{"a":true,"b":[1,2,{"a":null,"z":"\xc3\xa9"}]}'
    assert wire.decode(data) == document


def test_a_declared_bomb_is_refused_before_it_is_expanded():
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\0" * 50_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(wire.WireError, match="would expand to 50000000 bytes; the limit is 1000000"):
        wire.decompress(bomb, max_size=1_000_000)


def test_a_frame_that_hides_its_size_is_refused():
    hidden = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 1_000_000)
    with pytest.raises(wire.WireError, match="does not declare its size"):
        wire.decompress(hidden)


def _with_declared_size(frame: bytes, declared: int) -> bytes:
    """The same frame with a smaller size in its header (a lying bomb): 4-byte size field only."""
    descriptor = frame[4]
    assert descriptor >> 6 == 2 and not descriptor & 0b11  # 4-byte content size, no dictionary id
    position = 5 if descriptor & 0x20 else 6  # single-segment frames have no window byte
    return frame[:position] + declared.to_bytes(4, "little") + frame[position + 4 :]


def test_a_frame_that_lies_about_its_size_is_refused():
    frame = zstandard.ZstdCompressor(level=3).compress(b"\0" * 5_000_000)
    liar = _with_declared_size(frame, 1000)
    with pytest.raises(wire.WireError, match="corrupt or truncated|another size"):
        wire.decompress(liar, max_size=10_000)


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "bad frame header"),
        (b"not zstd at all", "bad frame header"),
        (wire.compress({"a": "b" * 1000})[:-5], "corrupt or truncated"),
        (wire.compress({"a": 1}) + wire.compress({"a": 2}), "corrupt or truncated"),
    ],
    ids=["empty", "garbage", "truncated", "two-frames"],
)
def test_broken_compressed_data_is_refused(data, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.decompress(data)


def test_an_oversized_compressed_body_is_refused():
    with pytest.raises(wire.WireError, match="over the"):
        wire.decode(b"\0" * (wire.MAX_COMPRESSED_BYTES + 1))


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b'{"a":1,"a":2}', "duplicate key"),
        (b'{"a":1.5}', "floats are not allowed"),
        (b'{"a":NaN}', "floats are not allowed"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a":', "not JSON"),
    ],
)
def test_strict_json(raw, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.parse_json(raw)


# --- signed requests and responses -----------------------------------------------------------------------


@pytest.fixture
def sender():
    return FakeLog()


RECIPIENT = "sh-00000000000000aa"


def _signed(sender, body=b"body", path="/sync/push", now=NOW, nonce=None, counter=None):
    return wire.sign_request(
        sender.key,
        sender.node_id,
        method="POST",
        path=path,
        recipient=RECIPIENT,
        body=body,
        counter=wire.next_counter(0, now) if counter is None else counter,
        now=now,
        nonce=nonce,
    )


def _verify(sender, headers, body=b"body", path="/sync/push", replay=None, key=None):
    auth = wire.parse_request_headers(headers)
    wire.verify_request(
        auth,
        public_key=key or sender.public,
        method="POST",
        path=path,
        body=body,
        recipient=RECIPIENT,
        replay=wire.ReplayCache() if replay is None else replay,
    )
    return auth


def test_a_signed_request_verifies(sender):
    auth = _verify(sender, _signed(sender))
    assert auth.node == sender.node_id and auth.recipient == RECIPIENT


@pytest.mark.parametrize(
    "change,reason",
    [
        (dict(body=b"other"), "signature does not verify"),
        (dict(path="/sync/pull"), "signature does not verify"),
        (dict(key=FakeLog().public), "signature does not verify"),
    ],
    ids=["body", "path", "wrong-key"],
)
def test_a_request_that_does_not_check_out_is_refused(sender, change, reason):
    with pytest.raises(wire.AuthError, match=reason):
        _verify(sender, _signed(sender), **change)


@pytest.mark.parametrize("field", [wire.H_TIMESTAMP, wire.H_COUNTER])
def test_the_timestamp_and_counter_are_signed(sender, field):
    headers = _signed(sender)
    headers[field] = str(int(headers[field]) + 1)
    with pytest.raises(wire.AuthError, match="signature does not verify"):
        _verify(sender, headers)


@pytest.mark.parametrize("skew", [-3600, 3600, -10 * 365 * 86400], ids=["1h-behind", "1h-ahead", "1970ish"])
def test_a_sender_whose_clock_is_off_is_accepted_and_its_offset_reported(sender, skew):
    replay = wire.ReplayCache()
    counter = 0
    for _ in range(3):
        counter = wire.next_counter(counter, NOW + skew)
        auth = _verify(sender, _signed(sender, now=NOW + skew, counter=counter), replay=replay)
        assert wire.clock_offset(auth, now=NOW) == skew


def test_the_counter_never_goes_backwards_when_the_clock_does():
    first = wire.next_counter(0, NOW)
    after_reboot = wire.next_counter(first, 0)  # the clock fell back to 1970
    assert after_reboot > first
    assert wire.next_counter(after_reboot, NOW + 1) > after_reboot


def test_a_request_for_another_node_is_refused(sender):
    headers = _signed(sender)
    headers[wire.H_TO] = "sh-00000000000000bb"
    with pytest.raises(wire.AuthError, match="addressed to sh-00000000000000bb"):
        _verify(sender, headers)


def test_a_replayed_nonce_is_refused(sender):
    replay = wire.ReplayCache()
    headers = _signed(sender)
    _verify(sender, headers, replay=replay)
    with pytest.raises(wire.AuthError, match="replayed request"):
        _verify(sender, headers, replay=replay)


def test_a_counter_going_back_past_the_window_is_refused(sender):
    replay = wire.ReplayCache()
    latest = wire.next_counter(0, NOW)
    _verify(sender, _signed(sender, counter=latest), replay=replay)
    older = latest - wire.COUNTER_REORDER_WINDOW
    with pytest.raises(wire.AuthError, match="counter .* is behind"):
        _verify(sender, _signed(sender, counter=older), replay=replay)  # a fresh nonce does not help
    # ...but requests in flight together may arrive a little out of order.
    _verify(sender, _signed(sender, counter=latest - 1), replay=replay)


@pytest.mark.parametrize(
    "missing", [wire.H_NODE, wire.H_TO, wire.H_TIMESTAMP, wire.H_COUNTER, wire.H_NONCE, wire.H_SIGNATURE]
)
def test_missing_headers_are_named(sender, missing):
    headers = _signed(sender)
    del headers[missing]
    with pytest.raises(wire.AuthError, match=f"missing {missing}"):
        wire.parse_request_headers(headers)


@pytest.mark.parametrize(
    "header,value,reason",
    [
        (wire.H_NODE, "alice", "not a node id"),
        (wire.H_TIMESTAMP, "-5", "whole seconds"),
        (wire.H_TIMESTAMP, "١٢", "whole seconds"),  # Arabic-Indic digits pass str.isdigit
        (wire.H_COUNTER, "-1", "whole number"),
        (wire.H_COUNTER, str(2**63), "whole number"),
        (wire.H_COUNTER, "9" * 4000, "whole number"),
        (wire.H_NONCE, "short", "16 to 64"),
        (wire.H_SIGNATURE, "AAAA", "not 64"),
        (wire.H_SIGNATURE, "%%%", "not base64"),
    ],
)
def test_malformed_headers_are_refused(sender, header, value, reason):
    headers = _signed(sender)
    headers[header] = value
    with pytest.raises(wire.AuthError, match=reason):
        wire.parse_request_headers(headers)


def test_the_replay_cache_is_bounded_and_forgets_only_nonces_its_counter_check_refuses():
    cache = wire.ReplayCache(window=10, max_entries=3)
    for n in range(3):
        cache.check_and_add("sh-a", f"nonce{n}", 100 + n)
    with pytest.raises(wire.AuthError, match="too many requests"):
        cache.check_and_add("sh-a", "nonce3", 103)  # full of live nonces: fail closed
    cache.check_and_add("sh-a", "nonce3", 120)  # the old ones fell out of the window
    assert len(cache) == 1
    with pytest.raises(wire.AuthError, match="replayed"):
        cache.check_and_add("sh-a", "nonce3", 120)
    with pytest.raises(wire.AuthError, match="is behind"):
        cache.check_and_add("sh-a", "nonce0", 100)  # forgotten, but its counter refuses it
    for n in range(1000):  # a long-lived peer: storage stays at what one window holds
        cache.check_and_add("sh-a", f"many{n}", 200 + 5 * n)
    assert len(cache) == 2


def test_responses_are_bound_to_their_request(sender):
    headers = wire.sign_response(sender.key, sender.node_id, 200, "nonce-of-request-1", b"answer")
    verify = dict(node_id=sender.node_id, public_key=sender.public, status=200, body=b"answer")
    wire.verify_response(headers, request_nonce="nonce-of-request-1", **verify)
    with pytest.raises(wire.AuthError, match="response signature does not verify"):
        wire.verify_response(headers, request_nonce="nonce-of-request-2", **verify)
    with pytest.raises(wire.AuthError, match="response signature does not verify"):
        wire.verify_response(headers, request_nonce="nonce-of-request-1", **{**verify, "body": b"swapped"})
    with pytest.raises(wire.AuthError, match="comes from"):
        wire.verify_response(headers, request_nonce="nonce-of-request-1", **{**verify, "node_id": "sh-x"})


# --- batches ---------------------------------------------------------------------------------------------


def test_a_whole_log_batch_checks(log):
    checked = wire.check_batch(log.batch())
    assert (checked.origin, checked.start, checked.size) == (log.node_id, 0, 10)
    assert checked.root == log.tree.root()


def test_a_batch_survives_the_wire(log):
    batch = log.batch(proofs=[mined_proof(log.checkpoint(), log.node_id)])
    assert wire.check_batch(wire.decode(wire.compress(batch))).asic_proofs == batch["asic_proofs"]


def test_a_continuation_checks_against_our_checkpoint(log):
    checked = wire.check_batch(log.batch(6, 10, proof_from=6), known=log.known(6))
    assert (checked.start, checked.size) == (6, 10)


def test_a_forged_entry_is_refused(log):
    batch = log.batch()
    batch["entries"][3]["payload"] = batch["entries"][3]["payload"].replace("note 3", "forged")
    with pytest.raises(wire.WireError, match="do not hash to the root .* signed"):
        wire.check_batch(batch)


def test_a_reordered_batch_is_refused(log):
    batch = log.batch()
    batch["entries"][2], batch["entries"][3] = batch["entries"][3], batch["entries"][2]
    with pytest.raises(wire.WireError, match="must be consecutive"):
        wire.check_batch(batch)


def test_a_batch_that_does_not_end_at_its_checkpoint_is_refused(log):
    batch = log.batch()
    batch["entries"].pop()
    with pytest.raises(wire.WireError, match="ends exactly at its checkpoint"):
        wire.check_batch(batch)


def test_a_batch_under_another_key_is_refused(log):
    batch = log.batch()
    batch["public_key"] = FakeLog().public_b64
    with pytest.raises(wire.WireError, match="does not belong to that public key"):
        wire.check_batch(batch)


def test_a_checkpoint_signed_by_someone_else_is_refused(log):
    impostor = FakeLog()
    batch = log.batch()
    body = batch["checkpoint"].split("\n\n")[0] + "\n"
    batch["checkpoint"] = note.sign_note(body, f"siliconhealth/{log.node_id}", impostor.key)
    with pytest.raises(wire.WireError, match="checkpoint of .* refused: note carries no signature"):
        wire.check_batch(batch)


def test_an_edited_checkpoint_is_refused(log):
    batch = log.batch()
    batch["checkpoint"] = batch["checkpoint"].replace("\n10\n", "\n11\n")
    with pytest.raises(wire.WireError, match="the note was altered"):
        wire.check_batch(batch)


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("payload", '{"b":1, "a":2}', "not a canonical JSON object"),
        ("payload", "[1]", "not a canonical JSON object"),
        ("payload", '{"a":1.5}', "not a canonical JSON object"),
        ("id", "NOT-A-UUID", "not a lower-case UUID"),
        ("id", "0000000A-0000-0000-0000-000000000000", "not a lower-case UUID"),
        ("kind", "x" * 17, "1 to 16 characters"),
        ("hlc", "12", "must be an integer"),
        ("index", True, "must be an integer"),
    ],
)
def test_malformed_entries_are_refused(log, field, value, reason):
    batch = log.batch()
    batch["entries"][0][field] = value
    with pytest.raises(wire.WireError, match=reason):
        wire.check_batch(batch)


def test_an_entry_with_an_extra_field_is_refused(log):
    batch = log.batch()
    batch["entries"][0]["extra"] = 1
    with pytest.raises(wire.WireError, match="exactly the fields"):
        wire.check_batch(batch)


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda b: b.update(format="siliconhealth-sync/0"), "unknown batch format"),
        (lambda b: b.update(extra=1), "exactly the fields"),
        (lambda b: b.update(entries=[]), "at least one entry"),
        (lambda b: b.update(tier=""), "tier"),
        (lambda b: b.update(origin="sh-0000000000000000"), "does not belong"),
        (lambda b: b.update(consistency={"from_size": 99, "proof": []}), "from_size"),
        (lambda b: b.update(asic_proofs={}), "asic_proofs must be a list"),
    ],
)
def test_malformed_batches_are_refused(log, change, reason):
    batch = log.batch()
    change(batch)
    with pytest.raises(wire.WireError, match=reason):
        wire.check_batch(batch)


def test_a_fork_at_the_same_size_is_detected_with_both_notes(log):
    ours = log.known(10)
    forked = FakeLog(log.key)
    forked.add(10, text="other history")
    batch = forked.batch()
    with pytest.raises(wire.InconsistentCheckpoint, match="two different trees of size 10") as caught:
        wire.check_batch(batch, known=ours)
    assert caught.value.our_note == ours.note and caught.value.their_note == batch["checkpoint"]


def test_a_fork_that_fails_the_consistency_proof_is_detected(log):
    ours = log.known(6)
    forked = FakeLog(log.key)
    forked.add(4)
    forked.add(8, text="rewritten")
    batch = forked.batch(6, 12, proof_from=6)
    with pytest.raises(wire.InconsistentCheckpoint, match="not consistent with the one we hold") as caught:
        wire.check_batch(batch, known=ours)
    assert caught.value.proof == batch["consistency"]["proof"]


def test_asic_proofs_must_be_bound_to_the_batch_checkpoint(log):
    good = mined_proof(log.checkpoint(), log.node_id)
    wire.check_batch(log.batch(proofs=[good]))
    with pytest.raises(wire.WireError, match="bound to another checkpoint"):
        wire.check_batch(log.batch(proofs=[mined_proof(log.checkpoint(5), log.node_id)]))
    with pytest.raises(wire.WireError, match="names node"):
        wire.check_batch(log.batch(proofs=[mined_proof(log.checkpoint(), "sh-0123456789abcdef")]))
    with pytest.raises(wire.WireError, match="repeats a share"):
        wire.check_batch(log.batch(proofs=[good, good]))
    tampered = {**good, "nonce": good["nonce"] ^ 1}
    with pytest.raises(wire.WireError, match="not a valid share"):
        wire.check_batch(log.batch(proofs=[tampered]))


@pytest.mark.parametrize(
    "vector,reason",
    [
        ([], "an object"),
        ({"alice": {"size": 1, "checkpoint": 1}}, "not a node id"),
        ({"sh-0123456789abcdef": {"size": 1}}, "size, checkpoint"),
        ({"sh-0123456789abcdef": {"size": 1, "checkpoint": 2}}, "checkpoint <= size"),
        ({"sh-0123456789abcdef": {"size": -1, "checkpoint": 0}}, "checkpoint <= size"),
    ],
)
def test_version_vectors_are_checked(vector, reason):
    with pytest.raises(wire.WireError, match=reason):
        wire.check_vector(vector)


# --- bundles ---------------------------------------------------------------------------------------------


@pytest.fixture
def bundle_bytes(log):
    sender = FakeLog()
    return sender, bundle_files.bundle_bytes(sender, [log.batch()], created=NOW)


def test_a_bundle_round_trips(bundle_bytes, log):
    sender, data = bundle_bytes
    assert data.startswith(b"siliconhealth-bundle/1\n" + sender.node_id.encode() + b" ")
    bundle = wire.read_bundle(data)
    assert (bundle.sender, bundle.recipient, bundle.created) == (sender.node_id, None, NOW)
    assert wire.check_batch(bundle.batches[0]).size == 10


def test_a_bundle_with_bad_magic_is_refused(bundle_bytes):
    with pytest.raises(wire.WireError, match="bad magic"):
        wire.read_bundle(b"PK\x03\x04" + bundle_bytes[1])


@pytest.mark.parametrize("keep", [10, 30, 60, 200, -1])
def test_a_truncated_bundle_is_refused(bundle_bytes, keep):
    data = bundle_bytes[1]
    with pytest.raises(wire.WireError, match="truncated|bad magic|malformed|not valid"):
        wire.read_bundle(data[:keep])


def test_every_changed_byte_refuses_the_bundle(bundle_bytes):
    data = bundle_bytes[1]
    header_end = data.index(b"\n", len(wire.BUNDLE_MAGIC)) + 1
    positions = sorted({0, 5, 22, 23, 30, header_end - 3, header_end - 1, header_end, len(data) - 1}) + list(
        range(header_end, len(data), max(1, (len(data) - header_end) // 40))
    )
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        with pytest.raises(wire.WireError) as caught:
            wire.read_bundle(bytes(flipped))
        assert str(caught.value), position


def test_a_flipped_body_byte_names_the_reason(bundle_bytes):
    data = bytearray(bundle_bytes[1])
    data[-10] ^= 0x40
    with pytest.raises(wire.WireError, match="signature by sh-.* does not verify: the file was altered"):
        wire.read_bundle(bytes(data))


def test_appended_bytes_refuse_the_bundle(bundle_bytes):
    with pytest.raises(wire.WireError, match="bytes after its end"):
        wire.read_bundle(bundle_bytes[1] + b"\n")


def test_a_bundle_signed_by_another_key_is_refused(bundle_bytes, log):
    sender, _ = bundle_bytes
    forged = wire.write_bundle(
        Ed25519PrivateKey.generate(), sender=sender.node_id, sender_public_key=sender.public_b64, batches=[]
    )
    with pytest.raises(wire.WireError, match="does not verify"):
        wire.read_bundle(forged)


def test_an_unwelcome_sender_is_refused_before_decompression(bundle_bytes):
    def refuse(node_id, public_key):
        raise wire.WireError(f"{node_id} is not a known peer")

    with pytest.raises(wire.WireError, match="is not a known peer"):
        wire.read_bundle(bundle_bytes[1], accept_sender=refuse)


def test_a_signed_bomb_is_refused_by_the_size_cap():
    sender = FakeLog()
    document = {"padding": "x" * 5_000_000}
    body = zstandard.ZstdCompressor(level=19).compress(json.dumps(document).encode())
    header = f"{sender.node_id} {sender.public_b64} {len(body)}".encode()
    signature = sender.key.sign(wire.BUNDLE_MAGIC + header + b"\n" + body)
    data = wire.BUNDLE_MAGIC + header + b" " + wire.b64(signature).encode() + b"\n" + body
    with pytest.raises(wire.WireError, match="would expand to"):
        wire.read_bundle(data, max_size=1_000_000)


def test_a_bundle_whose_body_names_another_sender_is_refused():
    sender, other = FakeLog(), FakeLog()
    document = wire.bundle_document(
        sender=other.node_id, sender_public_key=other.public_b64, recipient=None, created=NOW, batches=[]
    )
    body = wire.compress(document)
    header = f"{sender.node_id} {sender.public_b64} {len(body)}".encode()
    signature = sender.key.sign(wire.BUNDLE_MAGIC + header + b"\n" + body)
    data = wire.BUNDLE_MAGIC + header + b" " + wire.b64(signature).encode() + b"\n" + body
    with pytest.raises(wire.WireError, match="names another sender"):
        wire.read_bundle(data)


def test_batches_do_not_share_state(log):
    batch = log.batch()
    before = copy.deepcopy(batch)
    wire.check_batch(batch)
    assert batch == before


def test_base64_with_another_spelling_of_the_same_bytes_is_refused():
    text = wire.b64(bytes(range(32)))  # 44 characters, the last before '=' has two unused bits
    assert wire.unb64(text, "hash", 32) == bytes(range(32))
    spelled = text[:42] + chr(ord(text[42]) + 1) + "="
    with pytest.raises(wire.WireError, match="canonical"):
        wire.unb64(spelled, "hash", 32)
