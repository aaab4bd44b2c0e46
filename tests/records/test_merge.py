"""records.merge: the field-wise merge is a function of the set of entries (any arrival order gives
the same row), idempotent, equal to the whole-version rule without concurrency, and keeps the
losing value of a field two nodes changed concurrently."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records import merge

FIELDS = ("phone", "village", "given_name")
NODES = ("A", "B", "C")


class Node:
    """A node as the sync code drives it: local edits from its current row, and receiving entries
    followed by records.merge.settle (appending a merge entry when settle asks for one)."""

    def __init__(self, name: str, create: dict):
        self.name, self.entries, self.clock = (
            name,
            {(create["origin"], create["index"]): create},
            create["hlc"],
        )

    def own(self) -> int:
        return sum(1 for origin, _ in self.entries if origin == self.name)

    def row(self) -> dict:
        merged, pending = merge.settle(list(self.entries.values()))
        assert pending is None, "a node's row always equals an entry it holds"
        return max(self.entries.values(), key=merge.entry_key)["payload"]

    def append(self, kind: str, payload: dict) -> None:
        self.clock += 1
        entry = {
            "origin": self.name,
            "index": self.own(),
            "hlc": self.clock,
            "kind": kind,
            "payload": payload,
        }
        self.entries[(self.name, entry["index"])] = entry

    def edit(self, **changes) -> None:
        row = self.row()
        self.append(
            "update",
            {**row, **changes, "version": row["version"] + 1, "updated_at": f"{self.name}{self.clock}"},
        )

    def receive(self, other: "Node") -> int:
        self.entries.update(other.entries)
        self.clock = max(self.clock, other.clock)
        _, pending = merge.settle(list(self.entries.values()))
        if pending is not None:
            self.append(merge.MERGE_KIND, pending)
            return 1
        return 0


def _create() -> dict:
    payload = {
        "id": "p1",
        "version": 1,
        "updated_at": "t0",
        "phone": "0",
        "village": "Kibaoni",
        "given_name": "Asha",
    }
    return {"origin": "A", "index": 0, "hlc": 1, "kind": "create", "payload": payload}


def _converge(nodes: list[Node], order) -> int:
    """Full pairwise exchanges in the given order until nothing new is written; returns the merge
    entries written. Bounded: an endless stream of merge entries fails the test."""
    written = 0
    for _ in range(6):
        before = sum(len(n.entries) for n in nodes)
        for a, b in order:
            written += nodes[a].receive(nodes[b])
        if sum(len(n.entries) for n in nodes) == before and all(n.entries == nodes[0].entries for n in nodes):
            return written
    raise AssertionError("the nodes did not converge: merge entries keep appearing")


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("edit"),
            st.integers(0, 2),
            st.sampled_from(FIELDS),
            st.text("xyz", min_size=1, max_size=2),
        ),
        st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2), st.just("")),
    ),
    max_size=12,
)


def _run(ops) -> list[Node]:
    create = _create()
    nodes = [Node(name, create) for name in NODES]
    for op, a, b, value in ops:
        if op == "edit":
            nodes[a].edit(**{b: value})
        elif a != b:
            nodes[a].receive(nodes[b])
    return nodes


@settings(max_examples=150, deadline=None)
@given(operations, st.permutations([(a, b) for a in range(3) for b in range(3) if a != b]))
def test_all_nodes_converge_to_one_row_whatever_the_order_of_sync(ops, order):
    nodes = _run(ops)
    _converge(nodes, order)
    rows = [n.row() for n in nodes]
    assert rows[0] == rows[1] == rows[2]


@settings(max_examples=100, deadline=None)
@given(operations, st.randoms(use_true_random=False))
def test_the_merge_is_independent_of_arrival_order_and_idempotent(ops, rng):
    entries = [e for n in _run(ops) for e in n.entries.values()]
    expected = merge.merge(entries)
    shuffled = list(entries)
    rng.shuffle(shuffled)
    assert merge.merge(shuffled) == expected
    assert merge.merge(shuffled + entries) == expected  # a repeated entry changes nothing
    _, pending = merge.settle(entries)
    if pending is not None:  # writing the merge down, then merging again, asks for nothing more
        written = {"origin": "Z", "index": 0, "hlc": 10**9, "kind": merge.MERGE_KIND, "payload": pending}
        again, more = merge.settle([*entries, written])
        assert more is None and again.conflicts == expected.conflicts


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(NODES), st.sampled_from(FIELDS), st.text("xyz", max_size=2)), max_size=10
    )
)
def test_without_overlap_in_time_the_merge_is_the_latest_whole_version(edits):
    """Each node edits only after receiving everything written before: a linear history."""
    create = _create()
    nodes = {name: Node(name, create) for name in NODES}
    holder = nodes["A"]
    for name, field, value in edits:
        nodes[name].receive(holder)
        nodes[name].edit(**{field: value})
        holder = nodes[name]
    entries = list(holder.entries.values())
    latest = max(entries, key=merge.entry_key)
    merged, pending = merge.settle(entries)
    assert merged.payload == latest["payload"] and not merged.conflicts and pending is None
    assert all(e["kind"] != merge.MERGE_KIND for e in entries)


def _offline_edits(a_changes: dict, b_changes: dict) -> list[Node]:
    create = _create()
    a, b = Node("A", create), Node("B", create)
    b.clock = 5  # B's edit is the later one by clock
    a.edit(**a_changes)
    b.edit(**b_changes)
    return [a, b]


@pytest.mark.parametrize("order", list(itertools.permutations([(0, 1), (1, 0)])))
def test_different_fields_edited_offline_both_survive_with_no_conflict(order):
    nodes = _offline_edits({"phone": "0711"}, {"village": "Pwani"})
    _converge(nodes, order)
    for node in nodes:
        assert (node.row()["phone"], node.row()["village"]) == ("0711", "Pwani")
        assert merge.merge(list(node.entries.values())).conflicts == []


@pytest.mark.parametrize("order", list(itertools.permutations([(0, 1), (1, 0)])))
def test_one_field_edited_offline_keeps_the_clock_winner_and_reports_the_loser(order):
    nodes = _offline_edits({"village": "Mjini", "phone": "0711"}, {"village": "Pwani"})
    _converge(nodes, order)
    for node in nodes:
        entries = list(node.entries.values())
        merged = merge.merge(entries)
        assert (node.row()["village"], node.row()["phone"]) == ("Pwani", "0711")
        [conflict] = merged.conflicts
        loser = next(e for e in entries if merge.entry_key(e) == conflict.losers[0])
        assert conflict.name == "village" and loser["payload"]["village"] == "Mjini"


def test_a_resolution_settles_and_a_later_edit_of_the_field_on_top_of_the_merge_too():
    nodes = _offline_edits({"village": "Mjini"}, {"village": "Pwani"})
    _converge(nodes, [(0, 1), (1, 0)])
    a, b = nodes
    row = a.row()
    a.append("resolve", {**row, "village": "Mjini", "version": row["version"] + 1})
    b.receive(a)
    assert merge.merge(list(b.entries.values())).conflicts == [] and b.row()["village"] == "Mjini"


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([], "nothing to merge"),
        (["x"], "must be a dict"),
        ([{"origin": "A", "index": "0", "hlc": 1, "kind": "create", "payload": {}}], "integer"),
        ([{"origin": 1, "index": 0, "hlc": 1, "kind": "create", "payload": {}}], "string origin"),
        (
            [
                {"origin": "A", "index": 0, "hlc": 1, "kind": "create", "payload": {"id": "1"}},
                {"origin": "A", "index": 1, "hlc": 2, "kind": "update", "payload": {"id": "2"}},
            ],
            "one record",
        ),
        (
            [
                {"origin": "A", "index": 0, "hlc": 1, "kind": "create", "payload": {"id": "1"}},
                {"origin": "A", "index": 0, "hlc": 1, "kind": "create", "payload": {"id": "1", "x": 1}},
            ],
            "two different entries",
        ),
    ],
)
def test_malformed_entries_are_refused_with_a_reason(entries, reason):
    with pytest.raises(merge.MergeInputError, match=reason):
        merge.merge(entries)


def test_versions_written_before_a_field_existed_still_merge():
    old = {
        "origin": "A",
        "index": 0,
        "hlc": 1,
        "kind": "create",
        "payload": {"id": "p", "version": 1, "a": "x"},
    }
    new = {
        "origin": "B",
        "index": 0,
        "hlc": 2,
        "kind": "update",
        "payload": {"id": "p", "version": 2, "a": "x", "b": "y"},
    }
    merged = merge.merge([new, old])
    assert merged.payload == new["payload"] and merged.conflicts == []


def test_the_pure_merge_kind_is_a_ledger_entry_kind():
    from ledger.models import Entry

    assert merge.MERGE_KIND == Entry.Kind.SYNC_MERGE
