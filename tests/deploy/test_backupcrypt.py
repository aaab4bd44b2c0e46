"""The backup file format: round trips, and every kind of damage or wrong key refused (pure, no Django)."""

import io
import os
import struct

import pytest

from deploy import backupcrypt as bc

SIZES = [0, 1, bc.CHUNK - 1, bc.CHUNK, bc.CHUNK + 1, 3 * bc.CHUNK + 5]


@pytest.fixture(scope="module")
def keys():
    private, public = bc.generate_keypair()
    return bc.load_private(private), bc.load_public(public)


def seal(plain: bytes, public, pieces: int = 7) -> bytes:
    sink = io.BytesIO()
    writer = bc.EncryptingWriter(sink, public)
    step = max(1, len(plain) // pieces)
    for start in range(0, len(plain), step):  # written in uneven pieces, as tarfile does
        writer.write(plain[start : start + step])
    writer.close()
    return sink.getvalue()


def open_(sealed: bytes, private) -> bytes:
    sink = io.BytesIO()
    bc.decrypt_to(io.BytesIO(sealed), sink, private)
    return sink.getvalue()


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(keys, size):
    private, public = keys
    plain = os.urandom(size)
    sealed = seal(plain, public)
    assert open_(sealed, private) == plain
    # The payload is not stored in the clear (a run of 16+ random bytes cannot occur by chance).
    assert size < 16 or plain[:64] not in sealed


def test_two_backups_of_the_same_data_differ(keys):
    assert seal(b"same", keys[1]) != seal(b"same", keys[1])  # fresh data key and ephemeral key each time


def test_a_wrong_key_is_refused(keys):
    other, _ = bc.generate_keypair()
    with pytest.raises(bc.BackupCryptError, match="another key"):
        open_(seal(b"x" * 100, keys[1]), bc.load_private(other))


def test_a_header_that_names_our_key_but_was_wrapped_for_another_is_refused(keys):
    private, public = keys
    other_private, other_public = bc.generate_keypair()
    sealed = bytearray(seal(b"secret", bc.load_public(other_public)))
    ours = bc._b64(bc._raw(public)).encode()
    theirs = bc._b64(bc._raw(bc.load_public(other_public))).encode()
    forged = bytes(sealed).replace(theirs, ours)
    assert forged != bytes(sealed)
    with pytest.raises(bc.BackupCryptError, match="does not open"):
        open_(forged, private)


def test_every_changed_byte_is_refused(keys):
    private, public = keys
    sealed = seal(os.urandom(bc.CHUNK + 300), public)
    positions = sorted(
        {*range(0, 200), *range(len(sealed) - 100, len(sealed)), *range(200, len(sealed), 997)}
    )
    for position in positions:
        damaged = bytearray(sealed)
        damaged[position] ^= 0x01
        with pytest.raises(bc.BackupCryptError):
            open_(bytes(damaged), private)


def _chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    (length,) = struct.unpack(">I", sealed[len(bc.MAGIC) : len(bc.MAGIC) + 4])
    offset = len(bc.MAGIC) + 4 + length
    head, chunks = sealed[:offset], []
    while offset < len(sealed):
        (size,) = struct.unpack(">I", sealed[offset : offset + 4])
        chunks.append(sealed[offset : offset + 4 + size])
        offset += 4 + size
    return head, chunks


def test_dropped_reordered_truncated_or_extended_files_are_refused(keys):
    private, public = keys
    sealed = seal(os.urandom(3 * bc.CHUNK + 10), public)
    head, chunks = _chunks(sealed)
    assert len(chunks) == 4
    cases = {
        "last chunk dropped": head + b"".join(chunks[:-1]),
        "middle chunk dropped": head + b"".join(chunks[:1] + chunks[2:]),
        "chunks swapped": head + chunks[1] + chunks[0] + b"".join(chunks[2:]),
        "cut mid-chunk": sealed[: len(sealed) - 7],
        "bytes appended": sealed + b"\x00",
        "chunk appended": sealed + chunks[0],
        "header only": head,
    }
    for name, damaged in cases.items():
        with pytest.raises(bc.BackupCryptError):
            open_(damaged, private)
        assert name


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not a backup at all",
        bc.MAGIC,
        bc.MAGIC + struct.pack(">I", 0xFFFFFFFF),
        bc.MAGIC + struct.pack(">I", 0),
        bc.MAGIC + struct.pack(">I", 5) + b"{nope",
        bc.MAGIC + struct.pack(">I", 2) + b"[]",
        bc.MAGIC + struct.pack(">I", 9) + b'{"v": 2} ',
        os.urandom(10_000),
    ],
)
def test_hostile_and_malformed_files_are_refused(keys, garbage):
    with pytest.raises(bc.BackupCryptError):
        open_(garbage, keys[0])


def test_an_oversized_chunk_length_is_refused_before_reading_it(keys):
    private, public = keys
    head, _ = _chunks(seal(b"x", public))
    with pytest.raises(bc.BackupCryptError, match="impossible length"):
        open_(head + struct.pack(">I", 1 << 31), private)


@pytest.mark.parametrize(
    "pem",
    [b"", b"-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n", bytes(range(7, 71))],
    ids=["empty", "bad-base64", "binary"],
)
def test_bad_key_files_are_refused(pem):
    with pytest.raises(bc.BackupCryptError):
        bc.load_public(pem)
    with pytest.raises(bc.BackupCryptError):
        bc.load_private(pem)
