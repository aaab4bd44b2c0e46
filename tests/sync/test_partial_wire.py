"""The served (partial) group format on its own: every entry must prove its place in a signed tree."""

import copy

import pytest

from sync import partial_wire, wire

from .fakes import FakeLog, served_group


@pytest.fixture
def log():
    fake = FakeLog()
    fake.add(13)
    return fake


def group(log: FakeLog, indexes=(2, 5, 11), size: int | None = None) -> dict:
    return served_group(log, indexes, size, tier="rural_clinic")


def test_a_group_of_scattered_entries_checks(log):
    checked = partial_wire.check_group(group(log))
    assert [e["index"] for e in checked.entries] == [2, 5, 11] and checked.size == 13
    assert checked.root == log.tree.root()


def test_an_empty_group_checks(log):
    assert partial_wire.check_group(group(log, indexes=())).entries == []


def test_a_forged_entry_is_refused(log):
    forged = group(log)
    forged["entries"][1]["payload"] = '{"n":5,"text":"forged"}'
    with pytest.raises(wire.WireError, match=r"entries\[1\] \(index 5\) is not in the log"):
        partial_wire.check_group(forged)


def test_an_entry_moved_to_another_index_is_refused(log):
    moved = group(log)
    moved["entries"][0]["index"] = 3
    with pytest.raises(wire.WireError, match="not in the log"):
        partial_wire.check_group(moved)


def test_a_proof_of_another_entry_is_refused(log):
    swapped = group(log)
    swapped["proofs"][0], swapped["proofs"][1] = swapped["proofs"][1], swapped["proofs"][0]
    with pytest.raises(wire.WireError, match="not in the log"):
        partial_wire.check_group(swapped)


def test_reordered_entries_are_refused(log):
    reordered = group(log)
    reordered["entries"].reverse()
    reordered["proofs"].reverse()
    with pytest.raises(wire.WireError, match="out of order"):
        partial_wire.check_group(reordered)


def test_an_entry_past_the_checkpoint_is_refused(log):
    past = group(log, indexes=(2,), size=10)
    past["entries"].append(dict(log.entries[11]))
    past["proofs"].append([])
    with pytest.raises(wire.WireError, match="past the checkpoint"):
        partial_wire.check_group(past)


def test_a_checkpoint_signed_by_someone_else_is_refused(log):
    other = FakeLog()
    other.add(13)
    signed_elsewhere = group(log)
    signed_elsewhere["checkpoint"] = other.checkpoint()
    with pytest.raises(wire.WireError, match="checkpoint of"):
        partial_wire.check_group(signed_elsewhere)


def test_a_different_tree_of_a_size_we_hold_is_a_fork(log):
    fork = FakeLog(log.key)
    fork.add(13, text="rewritten")
    with pytest.raises(wire.InconsistentCheckpoint) as caught:
        partial_wire.check_group(group(fork), known=log.known(13))
    assert caught.value.our_note == log.checkpoint() and caught.value.their_note == fork.checkpoint()


def proven(log: FakeLog, from_size: int, **kwargs) -> dict:
    grown = group(log, **kwargs)
    proof = log.tree.consistency_proof(from_size, len(log.entries))
    grown["consistency"] = {"from_size": from_size, "proof": [wire.b64(h) for h in proof]}
    return grown


def test_consistent_growth_from_the_checkpoint_we_hold_is_proven(log):
    checked = partial_wire.check_group(proven(log, 5), known=log.known(5))
    assert checked.proven_from == 5 and checked.size == 13
    assert partial_wire.check_group(group(log), known=log.known(5)).proven_from is None  # forwarded: no tree


def test_an_inconsistent_larger_checkpoint_is_a_fork_with_its_proof(log):
    fork = FakeLog(log.key)
    fork.add(13, text="rewritten")
    bad = proven(fork, 5)
    with pytest.raises(wire.InconsistentCheckpoint, match="not consistent") as caught:
        partial_wire.check_group(bad, known=log.known(5))
    assert caught.value.our_note == log.checkpoint(5) and caught.value.their_note == fork.checkpoint()
    assert caught.value.proof == bad["consistency"]["proof"]


def test_a_consistency_proof_from_another_size_is_refused(log):
    with pytest.raises(wire.WireError, match="starts at size 4, but we hold its checkpoint of size 5"):
        partial_wire.check_group(proven(log, 4), known=log.known(5))


@pytest.mark.parametrize(
    ("consistency", "reason"),
    [
        ("proof", "null or"),
        ({"from_size": 5}, "null or"),
        ({"from_size": 0, "proof": []}, "from_size"),
        ({"from_size": 13, "proof": []}, "from_size"),
        ({"from_size": "5", "proof": []}, "from_size"),
        ({"from_size": 5, "proof": ["AAAA"] * 129}, "at most 128"),
        ({"from_size": 5, "proof": ["not base64!"]}, "not base64"),
        ({"from_size": 5, "proof": "AAAA"}, "list"),
        ({"from_size": 5, "proof": [wire.b64(bytes(32))]}, "not consistent"),
    ],
)
def test_malformed_or_wrong_consistency_proofs_are_refused(log, consistency, reason):
    bad = group(log)
    bad["consistency"] = consistency
    with pytest.raises(wire.WireError, match=reason):
        partial_wire.check_group(bad, known=log.known(5))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda g: g.pop("proofs"), "exactly the fields"),
        (lambda g: g.update(extra=1), "exactly the fields"),
        (lambda g: g["proofs"].pop(), "one inclusion proof per entry"),
        (lambda g: g.update(proofs=[["x"] * 65] * 3), "at most 64"),
        (lambda g: g["proofs"].__setitem__(0, ["not base64!"]), "not base64"),
        (lambda g: g["proofs"].__setitem__(0, [wire.b64(b"short")]), "not 32"),
        (lambda g: g.update(scanned_to=-1), "scanned_to"),
        (lambda g: g.update(scanned_to="9"), "scanned_to"),
        (lambda g: g.update(tier=""), "tier"),
        (lambda g: g.update(entries="x"), "at most"),
        (lambda g: g.update(entries=[{}] * 3), "exactly the fields"),
        (lambda g: g.update(origin="sh-0000000000000000"), "does not belong"),
        (lambda g: g.update(checkpoint=7), "signed note"),
    ],
)
def test_malformed_groups_are_refused(log, change, reason):
    bad = copy.deepcopy(group(log))
    change(bad)
    with pytest.raises(wire.WireError, match=reason):
        partial_wire.check_group(bad)


def test_an_oversized_group_is_refused(log):
    big = group(log)
    big["entries"] = big["entries"] * (wire.MAX_BATCH_ENTRIES // 3 + 1)
    big["proofs"] = big["proofs"] * (wire.MAX_BATCH_ENTRIES // 3 + 1)
    with pytest.raises(wire.WireError, match="at most"):
        partial_wire.check_group(big)


def test_a_non_object_group_is_refused():
    for hostile in (None, [], "group", 3):
        with pytest.raises(wire.WireError, match="exactly the fields"):
            partial_wire.check_group(hostile)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (None, "a served request"),
        ({"cursor": {}, "referrals": 0}, "a served request"),
        ({"cursor": [], "referrals": 0, "max_entries": 5}, "cursor must be"),
        ({"cursor": {"me": 1}, "referrals": 0, "max_entries": 5}, "not a node id"),
        ({"cursor": {"sh-0123456789abcdef": -1}, "referrals": 0, "max_entries": 5}, "non-negative"),
        ({"cursor": {"sh-0123456789abcdef": True}, "referrals": 0, "max_entries": 5}, "non-negative"),
        ({"cursor": {}, "referrals": -1, "max_entries": 5}, "referrals"),
        ({"cursor": {}, "referrals": 0, "max_entries": 0}, "max_entries"),
        ({"cursor": {}, "referrals": 0, "max_entries": 5, "known": []}, "known must be"),
        ({"cursor": {}, "referrals": 0, "max_entries": 5, "known": {"x": 1}}, "not a node id"),
        (
            {"cursor": {}, "referrals": 0, "max_entries": 5, "known": {"sh-0123456789abcdef": 2**63}},
            "non-neg",
        ),
        ({"cursor": {}, "referrals": 0, "max_entries": 5, "known": {}, "extra": 1}, "a served request"),
        (
            {
                "cursor": {},
                "referrals": 0,
                "max_entries": 1,
                "known": {f"sh-{i:016x}": 0 for i in range(100_001)},
            },
            "at most",
        ),
        (
            {"cursor": {f"sh-{i:016x}": 0 for i in range(100_001)}, "referrals": 0, "max_entries": 1},
            "at most",
        ),
    ],
)
def test_malformed_requests_are_refused(document, reason):
    with pytest.raises(wire.WireError, match=reason):
        partial_wire.check_request(document)


def test_a_good_request_is_read():
    cursor = {"sh-0123456789abcdef": 4}
    plain = {"cursor": cursor, "referrals": 2, "max_entries": 9}
    assert partial_wire.check_request(plain) == (cursor, 2, 9, {})
    known = {"sh-0123456789abcdef": 3}
    document = {"cursor": cursor, "referrals": 2, "max_entries": 9, "known": known}
    assert partial_wire.check_request(document) == (cursor, 2, 9, known)


def test_stored_proofs_round_trip(log):
    hashes = log.tree.inclusion_proof(5)
    assert partial_wire.decode_proof(partial_wire.encode_proof(hashes)) == hashes
    assert partial_wire.decode_proof("") == []
