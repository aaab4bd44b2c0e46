"""Error-correcting LSB watermark with a keyed tamper binding.  Pure: numpy + reedsolo + hashlib.

What is embedded
----------------
A 40-byte payload::

    record UUID (16) | ledger entry index, uint64 big-endian (8) | entry hash prefix (8) | tag (8)

where ``tag = HMAC-SHA256(K_tag, first 32 bytes)[:8]`` and ``K_tag`` is derived from the node key.

Two layouts, chosen from the image geometry alone (:func:`layout_for` is a pure function of shape and
dtype, so the verifier needs no side information):

* the **Reed-Solomon layout** for images of at least 128x128 samples (H * W * C >= 16384): 8x8 MAC
  blocks, one RS(64,40) codeword repeated over the slots;
* the **convolutional layout** below that (MR_small 64x64, a 64x64 RGB thumbnail, ...): 16x16 MAC
  blocks and a low-rate convolutional code, decoded by a list Viterbi decoder.  See "Small images".

Where it goes
-------------
The image is cut into blocks of 8x8 pixels (16x16 in the convolutional layout; the last block row/column
absorb a remainder, so every pixel is covered).  Only the least significant bit of each sample is ever
written, so no sample changes by more than 1.  In every block:

* the first 16 samples (raster order inside the block) carry a 16-bit keyed MAC
  (BLAKE2b, key derived from the node key and the image geometry) of the block index and the *upper*
  bits (``value >> 1``) of all the block's samples.  An edit of the upper bits that leaves the LSBs alone
  is therefore caught with probability 1 - 2**-16 per block.
* all other samples carry code bits.

The MAC costs 16 of the 64 LSBs of a gray 8x8 block (25%; 8% for RGB).  16 bits make a forged or
accidental match 1 in 65536 per block while leaving 75% of the LSBs for payload copies, which is far more
than the 64-symbol codeword needs from 128x128 pixels up; 8 bits would have let ~0.4% of damaged blocks
pass.  Quality: about half of the LSBs flip, so MSE ~0.5 and PSNR ~51.1 dB for 8-bit images (~99 dB for
16-bit), in both layouts.

Code bits: the payload is one Reed-Solomon codeword over GF(256) (reedsolo, primitive 0x11d) of length
``n = 64`` (40 data + 24 parity symbols), and the image's remaining LSBs hold as many copies of its 512
bits as fit (a 128x128 gray image gives 24 copies of each bit, 256x256 gives 96, 2048x2048 gives 6144).
One codeword, not several interleaved ones: the payload is only 40 bytes, reedsolo is called on exactly 64
bytes so it never splits them into chunks, and erasure positions index that codeword directly.  Why 24
parity symbols and not 215 (n=255)?  Measured: with a fixed LSB budget, fewer symbols means more copies of
every bit, and the soft vote over copies is worth more than extra parity.  The largest recoverable damage
rose steadily from n=255 to n=56..64 (CT_small 128x128 noise 46%->58-61%, blackout 74%->83%; 256x256
noise 69%->78-80%, stripes 77%->82-87%) and fell again below ~52.  n=64 keeps 24 parity symbols: up to 12
symbol errors, or 20 erasures with 4 parity symbols always left as a check besides the HMAC tag.

Code bit ``i`` is written at payload slot ``j`` when ``pi(j) mod N == i`` (``N`` code bits), where ``pi``
is a keyed pseudo-random permutation of the slots (a 4-round Feistel network with cycle walking), and
each written bit is XORed with a keyed whitening bit (SHAKE-256 stream).  The whitening makes a
blacked-out or zero-filled area vote at random instead of voting "0" for every bit, and makes the LSB
plane of a marked image look like noise.  Round keys and whitening come from SHAKE/HMAC, not from
``numpy.random``, because numpy does not promise that ``Generator`` methods give the same stream across
versions, and a watermark must verify for as long as the record lives.

Small images: the convolutional layout
--------------------------------------
Repetition is a weak code: at 64x64 gray the RS layout has only 6 copies of each bit and MR_small
(64x64, 16-bit) recovered from at most 29% noise, 53% blackout, 60% crop and 42% stripes.  Below 16384
samples the payload (320 bits, no Reed-Solomon parity) is instead encoded by a terminated convolutional
code of constraint length 11 (1024 states, 10 zero tail bits) with ``R`` generator polynomials
(``CONV_GENS``, R = slots // 330 clamped to 4..12: 11 for a 64x64 gray image, i.e. rate 1/11 plus a few
repeated bits), decoded by soft-decision Viterbi over the LLRs of the slots.  Measured on MR_small, the
largest damage recovered for seeds 0, 1 and 2 (the RS layout in brackets):

    noise 61% (29%)   blackout 70% (53%)   crop 77% (60%)   stripes 67% (42%)

and 64x64 RGB noise 77% (58%), 96x96 gray noise 74% (50%), 44x44 gray noise 42% (19%).  What it took:

* 16x16 MAC blocks: the MACs take 6% of the LSBs instead of 25% (3840 code slots at 64x64 instead of
  3072); with 8x8 blocks noise fell to 57%, blackout to 64% and stripes to 62%.  The tamper map is
  coarser (16 pixels), still with 16-bit MACs.  Images narrower than 32 pixels keep 8x8 blocks.
* reliabilities per 8x8 *cell* inside each 16x16 block (shrunk towards the block's): with one estimate
  per 16x16 block, stripes fell to 62% and blackout to 67%.
* no Reed-Solomon parity: RS(44..56,40) outside the convolutional code lost more to the rate than it
  gained; the 64-bit tag is the check.
* list decoding: besides the most likely path, up to 92 paths one or two error events away are tried
  against the tag (noise 55% -> 61%).  Every candidate is a tag check: with 4 EM rounds and the RS
  fallback a verify makes at most ~400 of them, so the chance that a random image yields a record is
  below 400 * 2**-64 (instead of ~20 * 2**-64): still nothing.
* constraint length 11 rather than 13: 13 gained ~1% more noise for 2.5x the decoding time.

Existing marks keep verifying: a small image whose convolutional decode fails is tried again with the RS
layout it would have had before (``_rs_layout``), and images of 128x128 samples and more are bit-for-bit
unchanged.

Decoding
--------
1. Recompute each block's MAC from its upper bits; blocks whose stored MAC matches are trusted.
2. Soft majority vote: every copy of a code bit votes +/-1, weighted by its block's reliability (log-odds).
   The reliabilities are re-estimated a few times (EM-style) from how often each block agrees with the
   leave-one-out consensus: a blacked-out, cropped or striped block agrees ~50% and its weight drops to
   zero, so it becomes an erasure instead of a wrong vote; a noisy block keeps a weight that reflects its
   noise level.  This is what makes recovery possible far beyond 50% contiguous damage.
3. RS layout: symbols whose weakest bit has little evidence become erasures (``erase_pos``); several
   erasure counts are tried, ordered by the expected ``erasures + 2*errors``, and at least 4 parity
   symbols are never erased.  Convolutional layout: the summed votes are the branch metrics of a list
   Viterbi decoder; the EM step compares every slot with the re-encoded best path instead of the
   leave-one-out vote (far more reliable with ~1 copy per bit), per block and per 8x8 cell.
4. A decoded codeword is accepted only if the HMAC tag checks.  Otherwise
   :class:`WatermarkNotFoundError` is raised: an unmarked image, a wrong key and a random image never
   yield a record.

After a successful decode the whole expected LSB plane is known, so the tamper map flags every block
whose LSBs (MAC or payload) differ from what was embedded.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import reedsolo

from records.imaging import convolutional
from records.imaging.tamper import TamperMap

BLOCK = 8
MAC_BITS = 16
DATA_LEN = 40  # uuid 16 + index 8 + hash prefix 8 + tag 8
TAG_LEN = 8
HASH_PREFIX_LEN = 8
CODE_LEN = 64  # Reed-Solomon n: 40 data + 24 parity symbols (see the module docstring for why)
MIN_COPIES = 3
RS_GUARD = 4  # parity symbols that are never erased
EM_ITERATIONS = 3
MAX_DECODE_ATTEMPTS = 6
_DOMAIN = b"siliconhealth/watermark/v1/"
# The convolutional layout of small images (see "Small images" in the module docstring)
CONV_BELOW = 128 * 128  # images with fewer samples (H * W * C) use it
CONV_BLOCK = 16  # its MAC block side (8 when the image is narrower than 32 pixels)
CONV_K = 11  # constraint length: 1024 trellis states
# Generator polynomials (octal, input bit in the LSB): the first four are the tabulated rate-1/4 code for
# K=11 (free distance 29); each further one was the random candidate giving its prefix the largest free
# distance (29, 36, 43, ... 88).  A layout takes as many as its slots can carry (at least 4, at most 12)
# and repeats code bits over the remaining slots.
CONV_GENS = (0o2327, 0o2353, 0o2671, 0o3175, 0o3075, 0o2745, 0o3665, 0o3137, 0o3271, 0o2273, 0o3645, 0o3753)
CONV_MIN_OUTPUTS = 4
CONV_EM_ITERATIONS = 3
LIST_SINGLES = 64  # list decoding: paths one error event away from the best ...
LIST_PAIRS_OF = 8  # ... and every pair of the best 8 of those
CELL_SIDE = 8  # reliability cells inside a MAC block
CELL_PRIOR = 4.0  # pseudo-slots pulling a cell's reliability towards its block's
MIN_KEY_LEN = 16


class WatermarkError(ValueError):
    """Base class of every refusal of this module."""


class WatermarkNotFoundError(WatermarkError):
    """No valid watermark for this key: unmarked image, wrong key, random data, or damage beyond repair."""


class ImageTooSmallError(WatermarkError):
    """The image has too few pixels to carry the payload with enough redundancy."""


class UnsupportedImageError(WatermarkError):
    """The array is not 8/16-bit gray or multi-channel (HxW or HxWxC, C <= 4)."""


# ---------------------------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class WatermarkPayload:
    """What a watermark names: a record, a ledger entry (index) and a prefix of that entry's hash."""

    record_uuid: uuid.UUID
    entry_index: int
    entry_hash: bytes  # the first 8 bytes of the ledger entry hash (a longer hash is truncated)

    def __post_init__(self) -> None:
        rid = self.record_uuid
        if not isinstance(rid, uuid.UUID):
            try:
                rid = uuid.UUID(str(rid))
            except ValueError as exc:
                raise WatermarkError(f"record_uuid is not a UUID: {self.record_uuid!r}") from exc
            object.__setattr__(self, "record_uuid", rid)
        if isinstance(self.entry_index, bool) or not isinstance(self.entry_index, int):
            raise WatermarkError("entry_index must be an int")
        if not 0 <= self.entry_index < 2**64:
            raise WatermarkError("entry_index must be in [0, 2**64)")
        h = self.entry_hash
        if isinstance(h, str):
            try:
                h = bytes.fromhex(h)
            except ValueError as exc:
                raise WatermarkError("entry_hash must be bytes or hex") from exc
        h = bytes(h)
        if len(h) < HASH_PREFIX_LEN:
            raise WatermarkError(f"entry_hash must have at least {HASH_PREFIX_LEN} bytes")
        object.__setattr__(self, "entry_hash", h[:HASH_PREFIX_LEN])

    def matches_entry_hash(self, full_hash: bytes | str) -> bool:
        """True if ``full_hash`` (bytes or hex) starts with the embedded prefix."""
        if isinstance(full_hash, str):
            full_hash = bytes.fromhex(full_hash)
        return hmac.compare_digest(bytes(full_hash[:HASH_PREFIX_LEN]), self.entry_hash)

    def body(self) -> bytes:
        return self.record_uuid.bytes + self.entry_index.to_bytes(8, "big") + self.entry_hash

    def to_dict(self) -> dict:
        return {
            "record_uuid": str(self.record_uuid),
            "entry_index": self.entry_index,
            "entry_hash_prefix": self.entry_hash.hex(),
        }


def _check_key(key: bytes) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes | bytearray | memoryview):
        raise WatermarkError("key must be bytes")
    key = bytes(key)
    if len(key) < MIN_KEY_LEN:
        raise WatermarkError(f"key must have at least {MIN_KEY_LEN} bytes")
    return key


def _subkey(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + label, hashlib.sha256).digest()


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(_subkey(key, b"payload-tag"), body, hashlib.sha256).digest()[:TAG_LEN]


def _encode_payload(payload: WatermarkPayload, key: bytes) -> bytes:
    body = payload.body()
    return body + _tag(key, body)


def _decode_payload(data: bytes, key: bytes) -> WatermarkPayload | None:
    body, tag = data[: DATA_LEN - TAG_LEN], data[DATA_LEN - TAG_LEN : DATA_LEN]
    if not hmac.compare_digest(_tag(key, body), tag):
        return None
    return WatermarkPayload(
        record_uuid=uuid.UUID(bytes=body[:16]),
        entry_index=int.from_bytes(body[16:24], "big"),
        entry_hash=body[24:32],
    )


# --------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Layout:
    """How a watermark fits an image of a given shape and sample size."""

    height: int
    width: int
    channels: int
    sample_bytes: int
    block_rows: int
    block_cols: int
    payload_slots: int  # LSBs that carry code bits (all LSBs minus 16 per block)
    code_length: int  # Reed-Solomon n (k = 40); 40 (no Reed-Solomon) in the convolutional layout
    block: int = BLOCK  # MAC block side in pixels
    conv: tuple[int, ...] = ()  # generator polynomials of the convolutional code; () = Reed-Solomon layout
    constraint: int = 0  # constraint length of the convolutional code

    @property
    def parity_symbols(self) -> int:
        return self.code_length - DATA_LEN

    @property
    def code_bits(self) -> int:
        if self.conv:
            return (8 * DATA_LEN + self.constraint - 1) * len(self.conv)
        return 8 * self.code_length

    @property
    def copies(self) -> float:
        """Average number of copies of each code bit."""
        return self.payload_slots / self.code_bits

    def descriptor(self) -> bytes:
        d = b"%dx%dx%d/%d" % (self.height, self.width, self.channels, self.sample_bytes)
        if self.conv:
            d += b"/b%d/cc%d:" % (self.block, self.constraint)
            d += b",".join(b"%o" % g for g in self.conv)
        return d


def _samples(pixels: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    """(H, W, C) unsigned native view/copy of the samples, and the dtype to give back."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or not 1 <= arr.shape[2] <= 4:
        raise UnsupportedImageError(f"expected an HxW or HxWxC (C<=4) array, got shape {np.shape(pixels)}")
    dt = arr.dtype
    if dt.kind not in "ui" or dt.itemsize not in (1, 2):
        raise UnsupportedImageError(f"expected 8- or 16-bit integer samples, got {dt}")
    out_dtype = dt
    if not dt.isnative:
        arr = arr.astype(dt.newbyteorder("="))
    udt = np.uint8 if dt.itemsize == 1 else np.uint16
    arr = np.ascontiguousarray(arr).view(udt)
    return arr, out_dtype


def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    raise UnsupportedImageError(f"expected an HxW or HxWxC array, got shape {shape}")


def _rs_layout(h: int, w: int, c: int, itemsize: int) -> Layout:
    """RS(64,40) repeated over the slots, 8x8 MAC blocks: every image of at least 128x128 samples."""
    bh, bw = h // BLOCK, w // BLOCK
    if bh < 1 or bw < 1:
        raise ImageTooSmallError(f"image {h}x{w} is smaller than one {BLOCK}x{BLOCK} block")
    slots = h * w * c - MAC_BITS * bh * bw
    if slots < 8 * MIN_COPIES * CODE_LEN:
        raise ImageTooSmallError(
            f"image {h}x{w}x{c} has {slots} payload slots; the watermark needs at least "
            f"{8 * MIN_COPIES * CODE_LEN} (about 44x44 gray or 23x23 RGB)"
        )
    return Layout(h, w, c, itemsize, bh, bw, slots, CODE_LEN)


def _conv_layout(h: int, w: int, c: int, itemsize: int) -> Layout:
    """Terminated convolutional code, 16x16 MAC blocks: images below ``CONV_BELOW`` samples."""
    block = CONV_BLOCK if min(h, w) >= 2 * CONV_BLOCK else BLOCK
    bh, bw = h // block, w // block
    slots = h * w * c - MAC_BITS * bh * bw
    steps = 8 * DATA_LEN + CONV_K - 1
    outputs = max(CONV_MIN_OUTPUTS, min(len(CONV_GENS), slots // steps))
    return Layout(h, w, c, itemsize, bh, bw, slots, DATA_LEN, block, CONV_GENS[:outputs], CONV_K)


def layout_for(shape: tuple[int, ...], dtype: np.dtype | type = np.uint8) -> Layout:
    """The :class:`Layout` for an image of this shape/dtype; raises :class:`ImageTooSmallError`.

    A pure function of (shape, dtype): the verifier derives it without side information.
    """
    h, w, c = _dims(shape)
    itemsize = np.dtype(dtype).itemsize
    lay = _rs_layout(h, w, c, itemsize)  # also the size check, the same for both layouts
    return lay if h * w * c >= CONV_BELOW else _conv_layout(h, w, c, itemsize)


@dataclass(frozen=True, eq=False)
class _Grid:
    """Index bookkeeping between raster order and block-grouped order (cached per image shape).

    Grouped order lists the samples block by block, raster order inside each block; the first
    ``MAC_BITS`` samples of a block hold its MAC, the rest are payload slots, numbered in grouped order.
    """

    shape: tuple[int, int, int]
    block: int  # block side in pixels
    starts: np.ndarray  # (nb + 1,) first sample of each block, grouped order
    pay_starts: np.ndarray  # (nb + 1,) first payload slot of each block
    pay_counts: np.ndarray  # (nb,) payload slots per block
    row_edges: np.ndarray
    col_edges: np.ndarray
    dest: np.ndarray | None  # (N,) raster index -> grouped index; None when H, W are multiples of the block
    mac_index: np.ndarray | None  # (nb, MAC_BITS) grouped indices of the MAC samples
    pay_index: np.ndarray | None  # (P,) grouped indices of the payload slots

    @property
    def aligned(self) -> bool:
        return self.dest is None

    @property
    def blocks(self) -> int:
        return self.starts.size - 1

    def group(self, flat: np.ndarray) -> np.ndarray:
        h, w, c = self.shape
        bs = self.block
        if self.dest is None:
            v = flat.reshape(h // bs, bs, w // bs, bs, c).transpose(0, 2, 1, 3, 4)
            return np.ascontiguousarray(v).reshape(-1)
        out = np.empty_like(flat)
        out[self.dest] = flat
        return out

    def ungroup(self, grouped: np.ndarray) -> np.ndarray:
        h, w, c = self.shape
        bs = self.block
        if self.dest is None:
            v = grouped.reshape(h // bs, w // bs, bs, bs, c).transpose(0, 2, 1, 3, 4)
            return np.ascontiguousarray(v).reshape(-1)
        return grouped[self.dest]

    def split(self, grouped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(MAC samples (nb, MAC_BITS), payload slots (P,)) of a grouped array."""
        if self.dest is None:
            g = grouped.reshape(self.blocks, -1)
            return g[:, :MAC_BITS], g[:, MAC_BITS:].reshape(-1)
        return grouped[self.mac_index], grouped[self.pay_index]

    def join(self, mac: np.ndarray, payload: np.ndarray) -> np.ndarray:
        if self.dest is None:
            out = np.empty((self.blocks, int(self.starts[1])), dtype=payload.dtype)
            out[:, :MAC_BITS] = mac
            out[:, MAC_BITS:] = payload.reshape(self.blocks, -1)
            return out.reshape(-1)
        out = np.empty(int(self.starts[-1]), dtype=payload.dtype)
        out[self.mac_index] = mac
        out[self.pay_index] = payload
        return out

    def block_sum(self, per_slot: np.ndarray) -> np.ndarray:
        """Sum of a per-payload-slot array over each block."""
        return np.add.reduceat(per_slot, self.pay_starts[:-1], dtype=np.int64)


@lru_cache(maxsize=4)
def _grid(h: int, w: int, c: int, block: int = BLOCK) -> _Grid:
    return _build_grid(h, w, c, indexed=bool(h % block or w % block), block=block)


def _build_grid(h: int, w: int, c: int, *, indexed: bool, block: int = BLOCK) -> _Grid:
    bh, bw = h // block, w // block
    nb = bh * bw
    bwid = np.full(bw, block, dtype=np.int64)
    bwid[-1] = w - block * (bw - 1)
    bhgt = np.full(bh, block, dtype=np.int64)
    bhgt[-1] = h - block * (bh - 1)
    counts = (bhgt[:, None] * bwid[None, :]).ravel() * c
    starts = np.zeros(nb + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    pay_counts = counts - MAC_BITS
    pay_starts = starts - MAC_BITS * np.arange(nb + 1, dtype=np.int64)
    row_edges = np.concatenate([[0], np.cumsum(bhgt)]).astype(np.int64)
    col_edges = np.concatenate([[0], np.cumsum(bwid)]).astype(np.int64)
    dest = mac_index = pay_index = None
    if indexed:  # explicit index arrays (needed when H or W is not a multiple of the block size)
        y = np.arange(h, dtype=np.int64)
        ry = np.minimum(y // block, bh - 1)
        x = np.arange(w, dtype=np.int64)
        rx = np.minimum(x // block, bw - 1)
        block2 = ry[:, None] * bw + rx[None, :]
        local2 = (y - block * ry)[:, None] * bwid[rx][None, :] + (x - block * rx)[None, :]
        dest2 = starts[block2] + local2 * c
        idx_t = np.int32 if starts[-1] < 2**31 else np.int64
        dest = (dest2[:, :, None] + np.arange(c, dtype=np.int64)).reshape(-1).astype(idx_t)
        mac_index = (starts[:-1, None] + np.arange(MAC_BITS, dtype=np.int64)).astype(idx_t)
        is_pay = np.ones(int(starts[-1]), dtype=bool)
        is_pay[mac_index] = False
        pay_index = np.flatnonzero(is_pay).astype(idx_t)
    arrays = (starts, pay_starts, pay_counts, row_edges, col_edges, dest, mac_index, pay_index)
    for a in arrays:
        if a is not None:
            a.setflags(write=False)
    return _Grid((h, w, c), block, *arrays)


def _block_macs(samples: np.ndarray, grid: _Grid, lay: Layout, key: bytes) -> np.ndarray:
    """(nb, 16) uint8 bits: keyed MAC of (block index, upper bits of the block's samples)."""
    upper = (samples.reshape(-1) >> 1).astype("<u2" if lay.sample_bytes == 2 else np.uint8, copy=False)
    grouped = grid.group(upper)
    mv = memoryview(grouped.view(np.uint8))
    bounds = (grid.starts * lay.sample_bytes).tolist()
    nb = grid.blocks
    step = MAC_BITS // 8
    base = hashlib.blake2b(key=_subkey(key, b"block-mac/" + lay.descriptor()), digest_size=step)
    out = bytearray(nb * step)
    for b in range(nb):
        hsh = base.copy()
        hsh.update(b.to_bytes(4, "big"))
        hsh.update(mv[bounds[b] : bounds[b + 1]])
        out[b * step : (b + 1) * step] = hsh.digest()
    return np.unpackbits(np.frombuffer(bytes(out), dtype=np.uint8)).reshape(nb, MAC_BITS)


# ------------------------------------------------------------------------------------- keyed spreading


def _feistel(v: np.ndarray, half_bits: int, round_keys: list[tuple[int, int]]) -> np.ndarray:
    """One pass of a balanced 4-round Feistel network on ``2*half_bits``-bit integers (uint32 array).

    Round function: multiply-shift hashing, the top ``half_bits`` bits of ``(right + k_add) * k_mul`` mod
    2**32 with an odd ``k_mul``.  Wrap-around in uint32 arithmetic is intended.
    """
    hb = np.uint32(half_bits)
    top = np.uint32(32 - half_bits)
    mask = np.uint32((1 << half_bits) - 1)
    left = v >> hb
    right = v & mask
    for k_add, k_mul in round_keys:
        f = right + np.uint32(k_add)
        f *= np.uint32(k_mul)
        f >>= top
        left, right = right, left ^ f
    return (left << hb) | right


def _keyed_permutation(size: int, seed: bytes) -> np.ndarray:
    """A keyed pseudo-random permutation of range(size) (Feistel + cycle walking), as uint32."""
    if not 0 < size < 2**32:
        raise ValueError("permutation size out of range")
    bits = max(2, (size - 1).bit_length())
    bits += bits % 2
    stream = hashlib.shake_256(seed + b"/feistel").digest(8 * 4)
    round_keys = [
        (
            int.from_bytes(stream[8 * i : 8 * i + 4], "little"),
            int.from_bytes(stream[8 * i + 4 : 8 * i + 8], "little") | 1,
        )
        for i in range(4)
    ]
    out = _feistel(np.arange(size, dtype=np.uint32), bits // 2, round_keys)
    limit = np.uint32(size - 1)
    todo = np.flatnonzero(out > limit)
    while todo.size:
        out[todo] = _feistel(out[todo], bits // 2, round_keys)
        todo = todo[out[todo] > limit]
    return out


@dataclass(frozen=True, eq=False)
class _Spread:
    code_bit: np.ndarray  # (P,) intp: which code bit each payload slot carries
    white: np.ndarray  # (P,) uint8: whitening bit of each slot


def _spread(lay: Layout, key: bytes) -> _Spread:
    seed = _subkey(key, b"layout/" + lay.descriptor())
    p = lay.payload_slots
    perm = _keyed_permutation(p, seed)
    code_bit = (perm % np.uint32(lay.code_bits)).astype(np.intp)  # intp: bincount is ~10x faster
    white = np.unpackbits(np.frombuffer(hashlib.shake_256(seed + b"/white").digest((p + 7) // 8), np.uint8))
    return _Spread(code_bit, white[:p])


# ----------------------------------------------------------------------------------------- Reed-Solomon


@lru_cache(maxsize=16)
def _rs(n: int) -> reedsolo.RSCodec:
    return reedsolo.RSCodec(nsym=n - DATA_LEN, nsize=n)


def _rs_encode(data: bytes, n: int) -> bytes:
    cw = bytes(_rs(n).encode(bytearray(data)))
    if len(cw) != n:  # pragma: no cover - reedsolo contract
        raise AssertionError("unexpected Reed-Solomon codeword length")
    return cw


@lru_cache(maxsize=4)
def _cells(grid: _Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability cells of ``CELL_SIDE`` pixels inside the MAC blocks (the last ones absorb remainders).

    Returns (cell of each payload slot, block of each cell, payload slots per cell).
    """
    h, w, c = grid.shape
    raster = grid.split(grid.group(np.arange(h * w * c, dtype=np.int64)))[1]  # sample index of each slot
    y, x = np.divmod(raster // c, w)
    block = np.repeat(np.arange(grid.blocks, dtype=np.int64), grid.pay_counts)
    bw = grid.col_edges.size - 1
    cy = np.minimum((y - grid.row_edges[block // bw]) // CELL_SIDE, grid.block // CELL_SIDE - 1)
    cx = np.minimum((x - grid.col_edges[block % bw]) // CELL_SIDE, grid.block // CELL_SIDE - 1)
    per_block = (grid.block // CELL_SIDE) ** 2
    _, first, cell = np.unique(
        (block * per_block + cy * (grid.block // CELL_SIDE) + cx), return_index=True, return_inverse=True
    )
    cell_block = block[first]
    count = np.bincount(cell).astype(np.float64)
    for a in (cell, cell_block, count):
        a.setflags(write=False)
    return cell, cell_block, count


def _code_bits(lay: Layout, data: bytes) -> np.ndarray:
    """The code bits (uint8 0/1, length ``lay.code_bits``) of a 40-byte payload block."""
    if lay.conv:
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        return convolutional.encode(bits, lay.conv, lay.constraint)
    return np.unpackbits(np.frombuffer(_rs_encode(data, lay.code_length), dtype=np.uint8))


# ----------------------------------------------------------------------------------------------- embed


def embed(pixels: np.ndarray, payload: WatermarkPayload, key: bytes) -> np.ndarray:
    """Return a copy of ``pixels`` whose LSBs carry ``payload`` (keyed with the node ``key``).

    ``pixels``: uint8/uint16 (or int8/int16) array, HxW (gray) or HxWxC (C <= 4, e.g. RGB).
    No sample changes by more than 1.  Raises :class:`ImageTooSmallError`/:class:`UnsupportedImageError`.
    """
    if not isinstance(payload, WatermarkPayload):
        raise WatermarkError("payload must be a WatermarkPayload")
    key = _check_key(key)
    samples, out_dtype = _samples(pixels)
    lay = layout_for(samples.shape, samples.dtype)
    grid = _grid(lay.height, lay.width, lay.channels, lay.block)
    spread = _spread(lay, key)

    cw_bits = _code_bits(lay, _encode_payload(payload, key))
    macs = _block_macs(samples, grid, lay, key)
    payload_bits = (cw_bits[spread.code_bit] ^ spread.white).astype(samples.dtype, copy=False)
    lsb = grid.ungroup(grid.join(macs.astype(samples.dtype), payload_bits))

    flat = samples.reshape(-1)
    marked = (flat & ~samples.dtype.type(1)) | lsb
    out = marked.reshape(samples.shape).view(out_dtype.newbyteorder("=")).astype(out_dtype, copy=False)
    return out.reshape(np.shape(pixels))


# ---------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class DecodeStats:
    code_length: int
    copies: float  # mean copies of each code bit
    trusted_blocks: float  # fraction of blocks whose MAC matched
    erasures: int  # RS symbols marked as erasures in the successful attempt (0 in the convolutional layout)
    corrected_errors: int  # RS symbols corrected that were not erased; convolutional: code bits out-voted
    attempts: int  # Reed-Solomon decodings tried; convolutional layout: candidate paths checked
    lsb_mismatch: float  # fraction of LSBs that differ from what was embedded


@dataclass(frozen=True, eq=False)
class VerifyResult:
    payload: WatermarkPayload
    tamper: TamperMap
    stats: DecodeStats

    def to_dict(self) -> dict:
        return {
            "payload": self.payload.to_dict(),
            "tamper": self.tamper.to_dict(),
            "stats": self.stats.__dict__.copy(),
        }


def _erasure_attempts(llr: np.ndarray, n: int) -> list[tuple[int, np.ndarray]]:
    """Erasure sets to try, best first: (count, positions of the least reliable symbols)."""
    nsym = n - DATA_LEN
    emax = max(0, nsym - RS_GUARD)
    mag = np.minimum(np.abs(llr).reshape(n, 8), 60.0)
    p_bit = 1.0 / (1.0 + np.exp(mag))
    p_sym = 1.0 - np.prod(1.0 - p_bit, axis=1)
    order = np.argsort(-p_sym, kind="stable")
    csum = np.concatenate([[0.0], np.cumsum(p_sym[order])])
    e = np.arange(emax + 1)
    expected_errors = csum[-1] - csum[e]
    score = e + 2.0 * expected_errors
    best = int(np.argmin(score))
    cands = {
        best,
        0,
        emax,
        int(np.count_nonzero(p_sym > 0.5)),
        int(np.count_nonzero(p_sym > 0.05)),
        min(emax, best + nsym // 6),
        max(0, best - nsym // 6),
    }
    ordered = sorted((min(c, emax) for c in cands), key=lambda c: (score[c], c))
    seen: list[int] = []
    for c in ordered:
        if c not in seen:
            seen.append(c)
    return [(c, np.sort(order[:c])) for c in seen[:MAX_DECODE_ATTEMPTS]]


def _try_decode(llr: np.ndarray, lay: Layout, key: bytes) -> tuple[WatermarkPayload, bytes, int, int, int]:
    n = lay.code_length
    hard = (llr < 0).astype(np.uint8)  # vote > 0 means bit 0 (sign convention: +1 <-> 0)
    received = bytearray(np.packbits(hard).tobytes())
    codec = _rs(n)
    attempts = 0
    for count, positions in _erasure_attempts(llr, n):
        attempts += 1
        try:
            _msg, full, _errata = codec.decode(bytearray(received), erase_pos=positions.tolist())
        except (reedsolo.ReedSolomonError, ZeroDivisionError, IndexError, ValueError):
            continue
        full = bytes(full)
        if len(full) != n:
            continue
        payload = _decode_payload(full[:DATA_LEN], key)
        if payload is None:
            continue
        erased = set(positions.tolist())
        errors = sum(1 for i in range(n) if full[i] != received[i] and i not in erased)
        if 2 * errors + count > n - DATA_LEN:  # outside bounded-distance decoding: do not trust it
            continue
        return payload, full, count, errors, attempts
    raise WatermarkNotFoundError("no codeword with a valid tag")


def verify(pixels: np.ndarray, key: bytes) -> VerifyResult:
    """Decode the watermark and map tampered blocks.

    Returns a :class:`VerifyResult`; raises :class:`WatermarkNotFoundError` when no payload with a valid
    tag can be recovered (never a guessed record).
    """
    key = _check_key(key)
    samples, _ = _samples(pixels)
    lay = layout_for(samples.shape, samples.dtype)
    layouts = [lay]
    if lay.conv:  # a small image marked before the convolutional layout existed carries the RS layout
        layouts.append(_rs_layout(lay.height, lay.width, lay.channels, lay.sample_bytes))
    for candidate in layouts:
        try:
            return _verify_layout(samples, candidate, key)
        except WatermarkNotFoundError:
            continue
    raise WatermarkNotFoundError(
        "no valid watermark for this key (unmarked image, wrong key, or damaged beyond recovery)"
    )


def _verify_layout(samples: np.ndarray, lay: Layout, key: bytes) -> VerifyResult:
    grid = _grid(lay.height, lay.width, lay.channels, lay.block)
    nb = grid.blocks
    flat = samples.reshape(-1)
    mac_actual, pay_actual = grid.split(grid.group((flat & 1).astype(np.uint8)))

    # 1. block MACs from the upper bits
    macs = _block_macs(samples, grid, lay, key)
    mac_bad = np.count_nonzero(mac_actual != macs, axis=1)
    trusted = mac_bad == 0

    # 2. weighted votes (sign +1 votes for code bit 0)
    spread = _spread(lay, key)
    bits = pay_actual ^ spread.white
    sign = 1.0 - 2.0 * bits
    cb = spread.code_bit
    nbits = lay.code_bits
    per_block = grid.pay_counts.astype(np.float64)
    # Beta prior on each block's reliability: trusted blocks start at ~95%, others at 50%.
    prior_a = np.where(trusted, 19.0, 1.0)
    prior_b = np.ones(nb)
    weight = np.where(trusted, 3.0, 0.25)

    def votes(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wrep = np.repeat(w, grid.pay_counts)
        return np.bincount(cb, weights=wrep * sign, minlength=nbits), wrep

    def reweighted() -> np.ndarray:
        llr, wrep = votes(weight)
        for _ in range(EM_ITERATIONS):
            # a slot agrees with the leave-one-out consensus when sign * (llr - own vote) > 0
            consensus = llr[cb]
            consensus *= sign
            agree = grid.block_sum(consensus > wrep)
            a = (agree + prior_a) / (per_block + prior_a + prior_b)
            llr, wrep = votes(np.clip(np.log(a / (1.0 - a)), 0.0, 6.0))
        return llr

    def conv_decode() -> tuple[WatermarkPayload, np.ndarray, int, int, int]:
        # Soft Viterbi decoding of the convolutional code.  The reliabilities are re-estimated (EM) from
        # how often the slots of each block, and of each cell inside it, agree with the re-encoded decision.
        cell, cell_block, cell_count = _cells(grid)
        wrep = np.repeat(weight, grid.pay_counts)
        tried = 0
        for _ in range(CONV_EM_ITERATIONS + 1):
            llr = np.bincount(cb, weights=wrep * sign, minlength=nbits)
            best = None
            for bits_in in convolutional.list_viterbi(
                llr, lay.conv, lay.constraint, 8 * DATA_LEN, singles=LIST_SINGLES, pairs_of=LIST_PAIRS_OF
            ):
                data = np.packbits(bits_in).tobytes()
                best = data if best is None else best
                tried += 1
                found = _decode_payload(data, key)
                if found is not None:
                    expected = _code_bits(lay, data)
                    errors = int(np.count_nonzero((llr < 0) != expected.astype(bool)))
                    return found, expected, 0, errors, tried
            expected = _code_bits(lay, best)
            agree = bits == expected[cb]
            a_block = (grid.block_sum(agree) + prior_a) / (per_block + prior_a + prior_b)
            a_cell = (
                np.bincount(cell, weights=agree, minlength=cell_count.size) + CELL_PRIOR * a_block[cell_block]
            ) / (cell_count + CELL_PRIOR)
            wrep = np.clip(np.log(a_cell / (1.0 - a_cell)), 0.0, 6.0)[cell]
        raise WatermarkNotFoundError("no codeword with a valid tag")

    def rs_decode() -> tuple[WatermarkPayload, np.ndarray, int, int, int]:
        # Strategies, cheapest first: MAC-weighted vote (only when every block is intact), re-estimated
        # block reliabilities, and a plain majority as the last resort.
        strategies = [lambda: votes(weight)[0]] if trusted.all() else []
        strategies += [reweighted, lambda: votes(np.ones(nb))[0]]
        attempts = 0
        for strategy in strategies:
            try:
                found, codeword, erasures, errors, tries = _try_decode(strategy(), lay, key)
            except WatermarkNotFoundError:
                attempts += MAX_DECODE_ATTEMPTS
                continue
            expected = np.unpackbits(np.frombuffer(codeword, dtype=np.uint8))
            return found, expected, erasures, errors, attempts + tries
        raise WatermarkNotFoundError("no codeword with a valid tag")

    payload, cw_bits, erasures, errors, attempts = conv_decode() if lay.conv else rs_decode()

    # 3. tamper map against the now-known expected LSB plane
    pay_bad = grid.block_sum(bits != cw_bits[cb])
    bad = (mac_bad + pay_bad).astype(np.int64)
    shape = (lay.block_rows, lay.block_cols)
    tamper = TamperMap(
        grid=(bad > 0).reshape(shape),
        row_edges=grid.row_edges,
        col_edges=grid.col_edges,
        block_size=lay.block,
        mismatched_bits=bad.reshape(shape),
    )
    stats = DecodeStats(
        code_length=lay.code_length,
        copies=round(lay.copies, 2),
        trusted_blocks=round(float(trusted.mean()), 4),
        erasures=erasures,
        corrected_errors=errors,
        attempts=attempts,
        lsb_mismatch=round(float(bad.sum()) / flat.size, 6),
    )
    return VerifyResult(payload=payload, tamper=tamper, stats=stats)


def extract(pixels: np.ndarray, key: bytes) -> WatermarkPayload:
    """Only the payload of :func:`verify` (same refusals)."""
    return verify(pixels, key).payload
