"""Terminated rate-1/R convolutional code with soft-decision list Viterbi decoding (pure numpy).

The watermark codec uses it for images too small for its Reed-Solomon layout (see codec.py's docstring
for why a K=11 code with list decoding and a 64-bit tag beats RS there).
"""

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

LIST_STATES = 4  # detour states considered per step (the best off the most likely path)
LIST_SCAN = 8  # detours traced per wanted candidate (many lead to the same path)


@lru_cache(maxsize=4)
def trellis(gens: tuple[int, ...], k: int) -> np.ndarray:
    """(2**k, R) uint8: output bits of the branch whose shift register (input bit in the LSB) is the row."""
    reg = np.arange(1 << k)
    out = np.array([[bin(int(r) & g).count("1") & 1 for g in gens] for r in reg], dtype=np.uint8)
    out.setflags(write=False)
    return out


def encode(bits: np.ndarray, gens: tuple[int, ...], k: int) -> np.ndarray:
    """Terminated (k - 1 zero tail bits) rate-1/R convolutional encoding; output in step-major order."""
    u = np.concatenate([bits.astype(np.int64), np.zeros(k - 1, dtype=np.int64)])
    reg = np.zeros(u.size, dtype=np.int64)
    for i in range(k):
        reg[i:] |= u[: u.size - i] << i
    return trellis(gens, k)[reg].reshape(-1)


@lru_cache(maxsize=4)
def branch_tables(gens: tuple[int, ...], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables that turn per-step code-bit LLRs into the metrics of all ``2**k`` branches.

    Branches are ordered [state high bit, input bit, state low bits].  The R outputs are split in two
    groups; a branch metric is the sum of one entry of each group's table of all ``2**group`` sign
    patterns, which costs two gathers per step instead of R multiply-adds.
    """
    ns = 1 << (k - 1)
    half = ns >> 1
    high, inp, low = np.meshgrid(np.arange(2), np.arange(2), np.arange(half), indexing="ij")
    out = trellis(gens, k)[((high * half + low) * 2 + inp).reshape(-1)].astype(np.int64)
    r1 = (len(gens) + 1) // 2
    tables = []
    for part in (out[:, :r1], out[:, r1:]):
        width = part.shape[1]
        index = part @ (1 << np.arange(width))
        patterns = 1.0 - 2.0 * ((np.arange(1 << width)[:, None] >> np.arange(width)) & 1)
        tables += [index, patterns.astype(np.float32)]
    for t in tables:
        t.setflags(write=False)
    return tables[0], tables[1], tables[2], tables[3]


def list_viterbi(
    llr: np.ndarray, gens: tuple[int, ...], k: int, nbits: int, *, singles: int = 0, pairs_of: int = 0
) -> Iterator[np.ndarray]:
    """Soft-decision list Viterbi decoding of the terminated code: candidate input bits, best first.

    ``llr`` holds the channel LLR of every code bit (step-major, positive favours 0).  The first
    candidate is the most likely (ML) path.  With ``singles`` > 0 it is followed, computed only if the
    caller asks for more, by up to ``singles`` paths that leave the ML path once (one error event: the
    best paths through the best few states off the ML path at each step, found with a backward pass,
    ranked by metric loss, duplicates dropped) and by the pairwise combinations of the ``pairs_of`` best
    of those (two error events).  At the decoding threshold most failures are one or two short error
    events, and the 64-bit tag tells the right candidate.

    The path metric is a sum of LLRs, so a common scale of the input changes nothing: weights need only be
    relative.  float32 is plenty (metrics are re-centred every 16 steps).  No BLAS: only element-wise sums
    in a fixed order, so every machine takes the same decisions.
    """
    ns = 1 << (k - 1)
    half = ns >> 1
    r = len(gens)
    steps = nbits + k - 1
    index1, patterns1, index2, patterns2 = branch_tables(gens, k)
    r1 = patterns1.shape[1]
    lc = llr.reshape(steps, r).astype(np.float32)
    sums = []
    for cols, patterns in ((lc[:, :r1], patterns1), (lc[:, r1:], patterns2)):
        acc = np.zeros((steps, patterns.shape[0]), dtype=np.float32)
        for j in range(patterns.shape[1]):
            acc += cols[:, j, None] * patterns[None, :, j]
        sums.append(acc)
    g4 = sums[0][:, index1]
    g4 += sums[1][:, index2]
    g4 = g4.reshape(steps, 2, 2, half)  # [t, state high bit, input, state low bits]
    g4[nbits:, :, 1] = -np.inf  # the tail shifts in zeros

    # forward: alpha[t] = best metric of a path reaching each state after t inputs
    alpha = np.empty((steps + 1, ns), dtype=np.float32)
    alpha[0] = -np.inf
    alpha[0, 0] = 0.0
    from_high = np.empty((steps, 2, half), dtype=bool)  # [t, input, low]: survivor came from the high half
    cand = np.empty((2, 2, half), dtype=np.float32)
    for t in range(steps):
        np.add(alpha[t].reshape(2, 1, half), g4[t], out=cand)
        np.greater(cand[1], cand[0], out=from_high[t])
        np.maximum(cand[0], cand[1], out=alpha[t + 1].reshape(half, 2).T)  # next state = (low << 1) | input
        if t % 16 == 15:
            alpha[t + 1] -= alpha[t + 1].max()
    ml_state = np.zeros(steps + 1, dtype=np.int64)
    ml_bits = np.zeros(steps, dtype=np.uint8)
    state = 0
    for t in range(steps - 1, -1, -1):
        low, b = state >> 1, state & 1
        ml_bits[t] = b
        state = low + half * int(from_high[t, b, low])
        ml_state[t] = state
    yield ml_bits[:nbits]
    if singles <= 0:
        return

    # backward: beta[t] = best metric from each state after t inputs to the end
    beta = np.empty((steps + 1, ns), dtype=np.float32)
    beta[steps] = -np.inf
    beta[steps, 0] = 0.0
    take_one = np.empty((steps, 2, half), dtype=bool)  # [t, high, low]: the best continuation inputs a 1
    for t in range(steps - 1, -1, -1):
        np.add(g4[t], beta[t + 1].reshape(half, 2).T[None], out=cand)
        np.greater(cand[:, 1], cand[:, 0], out=take_one[t])
        np.maximum(cand[:, 0], cand[:, 1], out=beta[t].reshape(2, half))
        if t % 16 == 0:
            beta[t] -= beta[t].max()

    # detours: the best few states off the ML path at every step, ranked by how much metric they lose
    times = np.arange(1, nbits + 1)
    through = alpha[times] + beta[times]
    best = through[np.arange(nbits), ml_state[times]]
    through[np.arange(nbits), ml_state[times]] = -np.inf
    alt = np.argpartition(-through, LIST_STATES, axis=1)[:, :LIST_STATES]  # (nbits, m)
    loss = (best[:, None] - np.take_along_axis(through, alt, axis=1)).ravel()
    pick = np.argsort(loss, kind="stable")[: LIST_SCAN * singles]
    t_c, s_c = times[pick // LIST_STATES], alt.ravel()[pick]
    paths = np.tile(ml_bits, (pick.size, 1))
    rows = np.arange(pick.size)
    cur = s_c.copy()  # back from the detour state to where it joins the ML path
    open_ = np.ones(pick.size, dtype=bool)
    for t in range(int(t_c.max()) - 1, -1, -1):
        act = rows[open_ & (t < t_c)]
        if act.size == 0 and t < int(t_c.min()):
            break
        c = cur[act]
        low, b = c >> 1, c & 1
        paths[act, t] = b
        c = low + half * from_high[t, b, low]
        cur[act] = c
        open_[act[c == ml_state[t]]] = False
    cur = s_c.copy()  # forward from the detour state until it rejoins
    open_[:] = True
    for t in range(int(t_c.min()), steps):
        act = rows[open_ & (t >= t_c)]
        if act.size == 0 and t >= int(t_c.max()):
            break
        c = cur[act]
        b = take_one[t, c >> (k - 2), c & (half - 1)]
        paths[act, t] = b
        c = ((c << 1) | b) & (ns - 1)
        cur[act] = c
        open_[act[c == ml_state[t + 1]]] = False
    paths = paths[:, :nbits]
    _, first = np.unique(np.packbits(paths, axis=1), axis=0, return_index=True)
    found = paths[np.sort(first)]
    found = found[(found != ml_bits[:nbits]).any(axis=1)][:singles]
    diffs = found[:pairs_of] ^ ml_bits[:nbits]
    i, j = np.triu_indices(diffs.shape[0], 1)
    yield from found
    yield from ml_bits[:nbits] ^ diffs[i] ^ diffs[j]
