"""USB bundles for a child that takes our logs in part (sync/partial_bundles.py), on the parent's side:
the parent remembers that the child is partial (said at `peers add`, or by the child itself in a round
or in its bundle) and a bundle made --for it carries the served entries, each with its proof, never
our whole logs. The child's side: test_partial_bundle_import.py; both homes: test_partial_bundle_nodes."""

import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger import merkle
from ledger import selectors as ledger_selectors
from ledger.models import Entry
from records.models import Patient
from sync import partial, partial_push, partial_wire, services, wire
from sync.models import Peer, SyncState

from ..ledger.remote import RemoteNode
from ..records import factories
from .bundle_files import ME, bundle_file
from .test_endpoints import as_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def family():
    """A child that registered one patient here; a local visit for that patient; a patient of ours
    referred to it; and one it does not serve."""
    node = RemoteNode()
    peer = services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="mobile_point", role="child"
    )
    theirs = node.patient(given_name="Served")
    services.receive_batch(as_batch(node), peer=peer, source="test")
    theirs = Patient.objects.get(pk=theirs.pk)
    factories.encounter(theirs)
    referred = factories.patient(given_name="Referred", phone="+255700000002")
    factories.encounter(referred)
    other = factories.patient(given_name="Elsewhere", phone="+255700000001")
    factories.encounter(other)
    partial.refer_patient(peer=peer, patient_id=referred.pk, referred_by="dr_a")
    services.seal_own_checkpoint()
    return node, peer, theirs, referred, other


def _export(tmp_path, node_id: str, name="out.shb") -> tuple[dict, wire.Bundle]:
    out = io.StringIO()
    path = tmp_path / name
    call_command("sync", "export", "--out", str(path), "--for", node_id, "--json", stdout=out)
    return json.loads(out.getvalue()), wire.read_bundle(path.read_bytes())


def _about(*patients) -> set[str]:
    """Objects of our log's entries about these patients: the patients, and rows naming them."""
    ids = {str(p.pk) for p in patients}
    rows = Entry.objects.filter(origin=ledger_selectors.self_node_id()).values_list("object_id", "payload")
    return {str(o) for o, payload in rows if str(o) in ids or any(i in payload for i in ids)}


def _served_ids(bundle: wire.Bundle) -> set[str]:
    return {e["id"] for offer in bundle.served for g in offer["groups"] for e in g.get("entries", [])}


def test_a_bundle_for_a_partial_child_carries_only_its_patients_entries_with_proofs(tmp_path, family):
    node, peer, theirs, referred, other = family
    services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="mobile_point", role="child", partial=True
    )
    summary, bundle = _export(tmp_path, node.node_id)
    me = ledger_selectors.self_node_id()
    assert bundle.recipient == node.node_id and bundle.served_position is None
    assert me not in {b["origin"] for b in bundle.batches}  # never our whole log
    sent = _served_ids(bundle)
    assert sent == _about(theirs, referred) - {str(theirs.pk)}  # its own patient's creation is its own entry
    assert not sent & _about(other)
    assert summary["served_entries"] == len(sent) and summary["served_groups"] >= 1
    for offer in bundle.served:
        groups, _, more = partial_wire.check_offer(offer)
        for group in groups:
            if "entries" in group:
                assert partial_wire.check_group(group).origin == me  # each entry proven in our checkpoint
    assert not bundle.served[-1]["more"]


def test_a_bundle_for_a_full_child_still_carries_whole_logs(tmp_path, family):
    node, _, _, _, other = family
    summary, bundle = _export(tmp_path, node.node_id)
    me = ledger_selectors.self_node_id()
    assert bundle.served is None and summary["served_entries"] == 0
    ours = [b for b in bundle.batches if b["origin"] == me]
    assert ours and str(other.pk) in {e["id"] for b in ours for e in b["entries"]}
    assert sum(len(b["entries"]) for b in ours) == ledger_selectors.log_size(me)


def test_a_second_bundle_proves_its_checkpoint_from_the_one_sent_and_links_the_one_said(tmp_path, family):
    node, peer, theirs, _, _ = family
    me = ledger_selectors.self_node_id()
    said = ledger_selectors.latest_checkpoint(me)
    partial_push.remember_child(peer, {"cursor": {}, "referrals": 0, "known": {me: said.size}})
    factories.encounter(theirs)
    _, first = _export(tmp_path, node.node_id, "first.shb")
    sent = ledger_selectors.latest_checkpoint(me)
    assert first.served_links is None  # proven from the checkpoint it said it holds: nothing else
    position = partial_push.child_position(Peer.objects.get(pk=peer.pk))
    assert position["known"] == {me: said.size} and position["sent"] == {me: [sent.size]}
    factories.encounter(theirs)
    _, second = _export(tmp_path, node.node_id, "second.shb")
    latest = ledger_selectors.latest_checkpoint(me)
    groups = [g for offer in second.served for g in offer["groups"] if "entries" in g]
    assert groups and groups[0]["consistency"]["from_size"] == sent.size  # it probably took the first
    (link,) = second.served_links  # in case it did not: from the one it said it holds
    assert (link["origin"], link["from_size"], link["to_size"]) == (me, said.size, latest.size)
    proof = [wire.unb64(h, "hash", 32) for h in link["proof"]]
    merkle.verify_consistency(said.size, latest.size, proof, bytes(said.root_hash), bytes(latest.root_hash))
    assert _served_ids(second) >= _served_ids(first)  # the cursor stays where the child said: re-sent


def test_the_parent_learns_from_the_child_whether_it_takes_its_logs_in_part(family):
    node, peer, _, _, _ = family
    position = {"cursor": {"sh-0123456789abcdef": 4}, "referrals": 1, "known": {}}
    partial_push.remember_child(peer, position)
    peer.refresh_from_db()
    assert peer.served_only and partial_push.child_position(peer) == {**position, "sent": {}}
    partial_push.remember_child(peer, None)  # its next sizes answer says nothing: it takes us whole
    peer.refresh_from_db()
    assert not peer.served_only
    partial_push.serve_pull(peer, {"cursor": {}, "referrals": 0, "max_entries": 10})  # it pulls served
    peer.refresh_from_db()
    assert peer.served_only
    with pytest.raises(wire.WireError):
        partial_push.remember_child(peer, {"cursor": {}, "referrals": -1, "known": {}})


def test_a_partial_childs_bundle_tells_the_parent_where_it_stands(tmp_path, family):
    node, peer, _, _, _ = family
    assert not peer.served_only
    position = {"cursor": {ledger_selectors.self_node_id(): 2}, "referrals": 0, "known": {}}
    path = bundle_file(tmp_path, node, [as_batch(node)], "up.shb", ME, served_position=position)
    services.import_bundle(path=path)
    peer.refresh_from_db()
    assert peer.served_only and partial_push.child_position(peer) == {**position, "sent": {}}
    position["referrals"] = "many"
    bundle_file(tmp_path, node, [], "up.shb", ME, served_position=position)
    with pytest.raises(services.Refused, match="served_position"):
        services.import_bundle(path=path)


def test_peers_add_says_a_child_is_partial_and_keeps_it_unless_told(family):
    node, _, _, _, _ = family
    add = dict(node_id=node.node_id, public_key=node.public_b64, tier="mobile_point", role="child")
    assert services.add_peer(**add, partial=True).served_only
    assert services.add_peer(**add).served_only  # unchanged when not said
    assert not services.add_peer(**add, partial=False).served_only
    assert not services.add_peer(**add, partial=True).partial  # that flag is a parent's
    fresh = RemoteNode()
    new = services.add_peer(
        node_id=fresh.node_id, public_key=fresh.public_b64, tier="mobile_point", role="child"
    )
    assert not new.served_only  # no tier implies it
    with pytest.raises(services.SyncError, match="needs --role parent or child"):
        services.add_peer(
            node_id=fresh.node_id, public_key=fresh.public_b64, tier="mobile_point", partial=True
        )


def test_status_counts_only_the_logs_a_partial_child_holds_whole_as_ahead(family):
    node, peer, _, _, _ = family
    SyncState.objects.filter(peer=peer).update(
        peer_sizes={node.node_id: {"size": 1, "checkpoint": 1}}, peer_sizes_at=timezone.now()
    )
    assert services.selectors.peer_facts(peer)["ahead_entries"] > 0  # whole: our log is ahead of it
    partial_push.remember_child(peer, {"cursor": {}, "referrals": 0, "known": {}})
    assert services.selectors.peer_facts(Peer.objects.get(pk=peer.pk))["ahead_entries"] == 0


def test_the_command_says_a_child_is_taken_in_part_and_what_its_bundle_carries(tmp_path, family):
    node, _, _, _, _ = family
    listing, written = io.StringIO(), io.StringIO()
    call_command("sync", "peers", "add", "--node-id", node.node_id, "--public-key", node.public_b64,
                 "--tier", "mobile_point", "--role", "child", "--partial", stdout=io.StringIO())  # fmt: skip
    call_command("sync", "peers", "list", stdout=listing)
    assert node.node_id in listing.getvalue() and "(in part)" in listing.getvalue()
    call_command("sync", "export", "--out", str(tmp_path / "b.shb"), "--for", node.node_id, stdout=written)
    assert "entries about its patients, with their proofs" in written.getvalue()


def test_referrals_behind_the_childs_cursor_come_once_in_a_bundle_of_small_offers(
    tmp_path, family, monkeypatch
):
    """The child stands past these patients' records when they are referred to it: their older entries
    come a few referrals per offer, each once, and the bundle is finished (the stand-in child moves its
    referral position on with each offer, as the real one does)."""
    from sync import partial_bundles
    from sync.models import ServedPatient

    node, peer, *_ = family
    peer = services.add_peer(
        node_id=node.node_id, public_key=node.public_b64, tier="mobile_point", role="child", partial=True
    )
    late = [factories.patient(given_name=f"Late{i}", phone=f"+25570000009{i}") for i in range(3)]
    for patient in late:
        factories.encounter(patient)
    services.seal_own_checkpoint()
    me = ledger_selectors.self_node_id()
    standing = {"cursor": {me: Entry.objects.filter(origin=me).count()}, "known": {}}
    top = ServedPatient.objects.filter(peer=peer).order_by("pk").last().pk
    partial_push.remember_child(peer, {**standing, "referrals": top})
    for patient in late:
        partial.refer_patient(peer=peer, patient_id=patient.pk, referred_by="dr_b")
    monkeypatch.setattr(partial_bundles, "BUNDLE_OFFER_ENTRIES", 2)
    _, bundle = _export(tmp_path, node.node_id)
    sent = [e["id"] for offer in bundle.served for g in offer["groups"] for e in g.get("entries", [])]
    assert set(sent) == _about(*late) and len(sent) == len(set(sent))
    assert 2 <= len(bundle.served) <= len(sent)
