import numpy as np

from records.imaging import codec, convolutional


def test_convolutional_code_and_list_decoding():
    rng = np.random.default_rng(7)
    gens, k = codec.CONV_GENS[:6], codec.CONV_K
    bits = rng.integers(0, 2, 320).astype(np.uint8)
    coded = convolutional.encode(bits, gens, k)
    assert coded.size == (320 + k - 1) * 6
    llr = 1.0 - 2.0 * coded
    assert np.array_equal(next(convolutional.list_viterbi(llr, gens, k, 320)), bits)
    flipped = llr * np.where(rng.random(llr.size) < 0.12, -1.0, 1.0)  # 12% of the code bits wrong
    assert np.array_equal(next(convolutional.list_viterbi(flipped, gens, k, 320)), bits)
    # list decoding: the most likely path first, then distinct candidates one or two error events away
    noisy = llr + rng.normal(0.0, 2.2, llr.size)
    candidates = np.array(list(convolutional.list_viterbi(noisy, gens, k, 320, singles=20, pairs_of=5)))
    assert np.array_equal(candidates[0], next(convolutional.list_viterbi(noisy, gens, k, 320)))
    assert 1 < len(candidates) <= 1 + 20 + 10
    assert len({c.tobytes() for c in candidates[:21]}) == min(21, len(candidates))
