"""A USB bundle imported by a child that takes its parent's logs in part (sync/partial_bundles.py): the
served offers are checked exactly as offered ones (partial_push.handle_offered) but taken all or
nothing with the rest of the bundle; importing twice changes nothing; a changed byte, a cut file, a
bundle for another node, a forged entry or a forked checkpoint is refused whole, nothing applied."""

import pytest

from ledger.models import Checkpoint, Entry
from ledger.verification import verify_all
from records.models import Patient
from sync import partial, services, wire
from sync.models import ConsistencyLink, ForkEvidence, PartialProof, SyncState

from ..ledger.remote import RemoteNode
from .bundle_files import ME, bundle_bytes, bundle_file
from .fakes import served_group
from .test_endpoints import fork_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def parent(far):
    """The parent (`far`: three patients, we serve the second) registered as one we take in part."""
    node, patients = far
    peer = services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="rural_clinic", role="parent", partial=True
    )
    return node, patients, peer


def _bundle(tmp_path, node: RemoteNode, offers, *, name="down.shb", recipient=ME, batches=(), links=None):
    return bundle_file(tmp_path, node, batches, name, recipient, served=offers, served_links=links)


def _offer(*groups, referrals=0, more=False):
    return {"groups": list(groups), "referrals": referrals, "more": more}


def _state():
    return (
        Entry.objects.count(),
        Checkpoint.objects.count(),
        Patient.objects.count(),
        PartialProof.objects.count(),
        ConsistencyLink.objects.count(),
        [s.progress for s in SyncState.objects.order_by("pk")],
    )


def test_a_partial_child_imports_exactly_the_served_entries_and_twice_changes_nothing(tmp_path, parent):
    node, patients, peer = parent
    path = _bundle(tmp_path, node, [_offer(served_group(node, [1, 3]), referrals=2)])
    summary = services.import_bundle(path=path)
    assert summary["served_applied"] == 2 and summary["applied"] == 2
    assert set(Patient.objects.values_list("pk", flat=True)) == {patients[1].pk}
    assert sorted(Entry.objects.filter(origin=node.node_id).values_list("index", flat=True)) == [1, 3]
    report = verify_all()
    assert report.ok, report.problems
    assert partial.served_progress(peer) == (
        {node.node_id: len(node.entries)},
        2,
    )  # its pulls go on from here
    before = _state()
    again = services.import_bundle(path=path)
    assert again["applied"] == 0 and _state() == before


def test_a_later_bundle_is_proven_consistent_with_the_checkpoint_the_first_brought(tmp_path, parent):
    node, patients, _ = parent
    services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))], name="a.shb"))
    held = len(node.entries)
    node.encounter(patients[1])
    group = served_group(node, [len(node.entries) - 1])
    group["consistency"] = {
        "from_size": held,
        "proof": [wire.b64(h) for h in node.tree.consistency_proof(held, len(node.entries))],
    }
    summary = services.import_bundle(path=_bundle(tmp_path, node, [_offer(group)], name="b.shb"))
    assert summary["served_applied"] == 1
    assert ConsistencyLink.objects.filter(origin=node.node_id, from_size=held).exists()
    assert verify_all().ok


def test_a_bundle_proving_from_a_checkpoint_we_do_not_hold_says_what_to_do(tmp_path, parent):
    node, patients, _ = parent
    services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))], name="a.shb"))
    node.encounter(patients[1])
    node.encounter(patients[1])
    group = served_group(node, [len(node.entries) - 1])
    older = len(node.entries) - 1  # not the size we hold
    group["consistency"] = {
        "from_size": older,
        "proof": [wire.b64(h) for h in node.tree.consistency_proof(older, len(node.entries))],
    }
    before = _state()
    with pytest.raises(services.Refused, match="refused whole: its served entries.*older view"):
        services.import_bundle(path=_bundle(tmp_path, node, [_offer(group)], name="b.shb"))
    assert _state() == before


def _link(node: RemoteNode, start: int, end: int) -> dict:
    proof = [wire.b64(h) for h in node.tree.consistency_proof(start, end)]
    return {"origin": node.node_id, "from_size": start, "to_size": end, "proof": proof}


def test_a_bundle_after_one_never_imported_is_proven_from_ours_by_its_link(tmp_path, parent):
    node, patients, _ = parent
    services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))], name="a.shb"))
    held = len(node.entries)
    node.encounter(patients[1])
    lost = len(node.entries)  # the parent sent this checkpoint in a bundle that never came
    node.encounter(patients[1])
    group = served_group(node, [lost - 1, lost])
    group["consistency"] = _link(node, lost, len(node.entries))
    del group["consistency"]["origin"], group["consistency"]["to_size"]
    path = _bundle(
        tmp_path, node, [_offer(group)], name="b.shb", links=[_link(node, held, len(node.entries))]
    )
    summary = services.import_bundle(path=path)
    assert summary["served_applied"] == 2 and verify_all().ok
    assert ConsistencyLink.objects.filter(origin=node.node_id, from_size=held).exists()


def test_a_link_that_does_not_prove_is_a_fork_and_nothing_is_applied(tmp_path, parent):
    node, patients, peer = parent
    services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))], name="a.shb"))
    held = len(node.entries)
    node.encounter(patients[1])
    node.encounter(patients[1])
    bad = _link(node, held, len(node.entries))
    bad["proof"] = list(reversed(bad["proof"])) if len(bad["proof"]) > 1 else [wire.b64(b"\x00" * 32)]
    group = served_group(node, [len(node.entries) - 1])
    before = _state()
    with pytest.raises(services.ForkRefused, match="not consistent"):
        services.import_bundle(path=_bundle(tmp_path, node, [_offer(group)], name="b.shb", links=[bad]))
    assert _state() == before and ForkEvidence.objects.filter(peer=peer).exists()


@pytest.mark.parametrize("damage", ["one byte", "truncated"])
def test_a_damaged_bundle_is_refused_whole(tmp_path, parent, damage):
    node, _, _ = parent
    path = _bundle(tmp_path, node, [_offer(served_group(node, [1, 3]))])
    data = bytearray(path.read_bytes())
    if damage == "one byte":
        data[len(data) // 2] ^= 0x01
    else:
        del data[-50:]
    path.write_bytes(bytes(data))
    before = _state()
    reason = "the file was altered" if damage == "one byte" else "truncated"
    with pytest.raises(services.Refused, match=reason):
        services.import_bundle(path=path)
    assert _state() == before


def test_a_bundle_made_for_another_node_is_refused(tmp_path, parent):
    node, _, _ = parent
    path = _bundle(tmp_path, node, [_offer(served_group(node, [1]))], recipient=RemoteNode().node_id)
    before = _state()
    with pytest.raises(services.Refused, match="is addressed to"):
        services.import_bundle(path=path)
    assert _state() == before


def test_one_forged_entry_refuses_every_offer_of_the_bundle(tmp_path, parent):
    node, _, _ = parent
    forged = served_group(node, [3])
    forged["entries"][0]["payload"] = forged["entries"][0]["payload"].replace("fever", "cough")
    path = _bundle(tmp_path, node, [_offer(served_group(node, [1]), more=True), _offer(forged)])
    before = _state()
    with pytest.raises(services.Refused, match=r"served offer 1: served .*not in the log"):
        services.import_bundle(path=path)
    assert _state() == before  # the good first offer was not kept either


def test_a_forked_checkpoint_is_refused_whole_and_its_evidence_kept(tmp_path, parent):
    node, patients, peer = parent
    services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))], name="a.shb"))
    fork = fork_of(node)
    for entry in node.entries[:-1]:  # the same size, another last entry: two trees of one size
        fork.entries.append(entry)
        fork.tree.append(wire.leaf_of(node.node_id, entry))
    fork.encounter(patients[1])
    before = _state()
    with pytest.raises(services.ForkRefused, match="refused whole"):
        services.import_bundle(path=_bundle(tmp_path, fork, [_offer(served_group(fork, [1]))], name="b.shb"))
    assert _state() == before
    assert ForkEvidence.objects.filter(origin=node.node_id, peer=peer).exists()


def test_a_child_taking_the_parent_whole_refuses_served_entries(tmp_path, far):
    node, _ = far
    services.add_peer(node_id=node.node_id, public_key=node.public_b64, tier="rural_clinic", role="parent")
    before = _state()
    with pytest.raises(services.Refused, match="takes the logs of .* whole"):
        services.import_bundle(path=_bundle(tmp_path, node, [_offer(served_group(node, [1]))]))
    assert _state() == before


def test_served_entries_need_a_recipient_and_well_formed_offers(tmp_path, far):
    node, _ = far
    with pytest.raises(wire.WireError, match="need a recipient"):
        bundle_bytes(node, served=[])
    document = wire.bundle_document(
        sender=node.node_id,
        sender_public_key=node.public_b64,
        recipient=None,
        created=0,
        batches=[],
        served=[_offer(served_group(node, [1]))],
    )
    body = wire.compress(document)
    header = f"{node.node_id} {node.public_b64} {len(body)}".encode()
    signature = node.key.sign(wire._bundle_signed_part(header, body))
    data = wire.BUNDLE_MAGIC + header + b" " + wire.b64(signature).encode() + b"\n" + body
    with pytest.raises(wire.WireError, match="only in a bundle with a recipient"):
        wire.read_bundle(data)  # signed, but for anyone: served entries are for one child
    for offers in ([{"groups": []}], {"groups": []}, [_offer()] * (wire.MAX_SERVED_OFFERS + 1)):
        data = bundle_bytes(node, recipient=ME, served=offers)
        with pytest.raises(wire.WireError, match="served"):
            wire.read_bundle(data)
    with pytest.raises(wire.WireError, match="go with served offers"):
        bundle_bytes(node, recipient=ME, served_links=[])
    for link in (
        {"origin": node.node_id},
        {**_link(node, 1, 3), "from_size": 3},
        {**_link(node, 1, 3), "proof": "x"},
    ):
        data = bundle_bytes(node, recipient=ME, served=[_offer()], served_links=[link])
        with pytest.raises(wire.WireError, match="served_links"):
            wire.read_bundle(data)
