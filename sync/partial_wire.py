"""The wire format of downward, partial sync. Pure: no Django.

A child that mirrors its parent's logs only in part asks `/sync/served` for the entries about the
patients it serves. The answer is a list of groups, one per (origin, signed checkpoint):
    {"origin", "public_key", "tier", "checkpoint": C2SP signed note, "entries": [wire entries in
     increasing index order, not necessarily consecutive], "proofs": [[base64 hash, ...] per entry],
     "scanned_to": the index up to which the parent looked for this child}
Each entry carries its RFC 9162 inclusion proof in the checkpoint, so the child verifies every
entry against its origin's signature without holding the rest of the log, and can re-verify later.
A group may also carry "consistency": {"from_size", "proof": [base64]} | null, the RFC 9162
consistency proof from the child's latest checkpoint of that origin (told in the request's "known")
to the group's. With it the child detects a fork of a log it holds only in part, not just a
different tree of a size it already holds. A parent that holds the origin whole always sends it. One
that holds it in part itself has no tree to prove from, but it kept every consistency proof it checked
(sync.ConsistencyLink): it forwards the chain of them from the child's checkpoint, the intermediate
signed checkpoints in "via": [{"checkpoint": signed note, "proof": [base64]}, ...] (each step proven
from the one before, the first from the child's "known") and the last link in "consistency". Where
no chain reaches (it was itself sent a log without proofs) it sends null, and the child falls back to
comparing checkpoints of the same size (a gap: see check_group).
Request: {"cursor": {origin: next index to look at}, "referrals": last referral seen, "max_entries",
"known" (optional): {origin: size of the latest checkpoint held}}.

When the parent starts the round, the child tells it in its `/sync/sizes` answer that it takes this
parent's logs in part, with where its served pulls stand: "served": {"cursor", "referrals", "known"}
(as in the request above). The parent then computes the same answer it would give `/sync/served` and
offers it to the child's `/sync/offered`: {"groups": [...], "referrals", "more"}; the child checks and
stores each group exactly as a pulled one and answers {"node", "cursor", "referrals", "known",
"applied", "problems": [text]}, its new position, from which the parent goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger import merkle

from . import wire

GROUP_FIELDS = {"origin", "public_key", "tier", "checkpoint", "entries", "proofs", "scanned_to"}
OPTIONAL_GROUP_FIELDS = {"consistency", "via"}
MAX_VIA = 64  # steps of a forwarded chain of consistency proofs
MAX_PROOF_HASHES = 64  # a tree of 2**64 leaves needs no more
MAX_GROUPS = 1_000


class PartialRefused(ValueError):
    """A served group that does not verify or does not fit; nothing of it was stored."""


@dataclass
class CheckedGroup(wire.CheckedSigned):
    proofs: list[list[bytes]]
    scanned_to: int
    proven_from: int | None = None  # size of the known checkpoint a consistency proof linked this one to
    # The checkpoints of a forwarded chain ("via": size, root, note) and every link proven, as
    # (from size, to size, proof hashes): kept, so this node can forward the chain in turn.
    steps: list[tuple[int, bytes, str]] = field(default_factory=list)
    links: list[tuple[int, int, list[bytes]]] = field(default_factory=list)


def _check_sizes(value, what: str) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > 100_000:
        raise wire.WireError(f"{what} must be an object of at most 100000 origins")
    for origin, index in value.items():
        if not wire._NODE_ID.match(origin):
            raise wire.WireError(f"{what} key {origin[:40]!r} is not a node id")
        if type(index) is not int or not 0 <= index < 2**63:
            raise wire.WireError(f"{what} of {origin} must be a non-negative integer")
    return value


def check_request(document) -> tuple[dict[str, int], int, int, dict[str, int]]:
    """(cursor, referrals, max_entries, known checkpoint sizes) of a served-entries request."""
    base = {"cursor", "referrals", "max_entries"}
    if not isinstance(document, dict) or set(document) not in (base, base | {"known"}):
        raise wire.WireError("a served request is {cursor, referrals, max_entries[, known]}")
    cursor = _check_sizes(document["cursor"], "cursor")
    known = _check_sizes(document.get("known", {}), "known")
    referrals, max_entries = document["referrals"], document["max_entries"]
    if type(referrals) is not int or referrals < 0 or type(max_entries) is not int or max_entries < 1:
        raise wire.WireError("referrals must be >= 0 and max_entries >= 1 (integers)")
    return cursor, referrals, max_entries, known


def check_announce(value) -> tuple[dict[str, int], int, dict[str, int]]:
    """(cursor, referrals, known) of a child's "served" announce (in its sizes answer)."""
    if not isinstance(value, dict) or set(value) != {"cursor", "referrals", "known"}:
        raise wire.WireError("a served announce is {cursor, referrals, known}")
    referrals = value["referrals"]
    if type(referrals) is not int or not 0 <= referrals < 2**63:
        raise wire.WireError("referrals must be a non-negative integer")
    return _check_sizes(value["cursor"], "cursor"), referrals, _check_sizes(value["known"], "known")


def check_offer(document) -> tuple[list, int, bool]:
    """(groups, referrals, more) of what a parent offers its partial child; each group is checked by
    check_group as the child takes it."""
    if not isinstance(document, dict) or set(document) != {"groups", "referrals", "more"}:
        raise wire.WireError("an offer of served entries is {groups, referrals, more}")
    groups, referrals, more = document["groups"], document["referrals"], document["more"]
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise wire.WireError(f"an offer carries a list of at most {MAX_GROUPS} groups")
    if type(referrals) is not int or not 0 <= referrals < 2**63 or type(more) is not bool:
        raise wire.WireError("referrals must be a non-negative integer and more a boolean")
    return groups, referrals, more


def check_offer_answer(document) -> tuple[dict[str, int], int, dict[str, int], int, list[str]]:
    """(cursor, referrals, known, applied, problems) of a partial child's answer to an offer."""
    fields = {"node", "cursor", "referrals", "known", "applied", "problems"}
    if not isinstance(document, dict) or set(document) != fields:
        raise wire.WireError(f"an answer to an offer has exactly the fields {', '.join(sorted(fields))}")
    cursor, referrals, known = check_announce({k: document[k] for k in ("cursor", "referrals", "known")})
    applied, problems = document["applied"], document["problems"]
    if type(applied) is not int or applied < 0:
        raise wire.WireError("applied must be a non-negative integer")
    if (
        not isinstance(problems, list)
        or len(problems) > MAX_GROUPS
        or not all(isinstance(p, str) for p in problems)
    ):
        raise wire.WireError("problems must be a list of texts")
    return cursor, referrals, known, applied, [p[:500] for p in problems]


def check_group(group, *, known: wire.KnownCheckpoint | None = None) -> CheckedGroup:
    """Shape, the origin's key and signature on the checkpoint, the consistency proof from `known`,
    and each entry's inclusion proof in it. `known` is the receiver's latest checkpoint of the origin,
    if any: a different root at the same size, or a larger checkpoint whose consistency proof from it
    fails, is a fork (InconsistentCheckpoint, with both notes and the proof). A larger checkpoint
    without a proof from `known` is accepted (a parent holding the log in part cannot prove it);
    CheckedGroup.proven_from says whether it was linked."""
    if not isinstance(group, dict) or set(group) - OPTIONAL_GROUP_FIELDS != GROUP_FIELDS:
        raise wire.WireError(f"a served group has exactly the fields {', '.join(sorted(GROUP_FIELDS))}")
    origin, tier, signed, body = wire.check_signed_checkpoint(group)
    consistency = group.get("consistency")
    steps, links = [], []
    start = known
    if group.get("via") is not None:  # a forwarded chain: each step proven from the one before
        if consistency is None:
            raise wire.WireError("a served group with via needs the consistency proof of its last step")
        start, steps, links = _walk_via(group["via"], origin, group["public_key"], known)
    # Same size: roots must match. Larger: a proof from start.size must verify. Nothing is stored yet.
    wire._check_consistency(consistency, origin, signed, body, start)
    proven_from = None
    if consistency is not None and start is not None and 0 < start.size < body.size:
        if consistency["from_size"] != start.size:
            raise wire.WireError(
                f"the consistency proof of {origin} starts at size {consistency['from_size']}, "
                f"but we hold its checkpoint of size {start.size}"
            )
        proven_from = known.size
        links.append(_link(start.size, body.size, consistency["proof"]))
    entries, proofs, scanned_to = group["entries"], group["proofs"], group["scanned_to"]
    if not isinstance(entries, list) or len(entries) > wire.MAX_BATCH_ENTRIES:
        raise wire.WireError(f"a served group carries at most {wire.MAX_BATCH_ENTRIES} entries")
    if not isinstance(proofs, list) or len(proofs) != len(entries):
        raise wire.WireError("a served group carries one inclusion proof per entry")
    if type(scanned_to) is not int or not 0 <= scanned_to < 2**63:
        raise wire.WireError("scanned_to must be a non-negative integer")
    checked_proofs = []
    for position, (entry, proof) in enumerate(zip(entries, proofs, strict=True)):
        wire._check_entry(position, entry)
        if position and entry["index"] <= entries[position - 1]["index"]:
            raise wire.WireError(f"entries[{position}] is out of order (indexes must increase)")
        if entry["index"] >= body.size:
            raise wire.WireError(f"entries[{position}] has index {entry['index']}, past the checkpoint")
        if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
            raise wire.WireError(f"proofs[{position}] must be a list of at most {MAX_PROOF_HASHES} hashes")
        hashes = [wire.unb64(h, f"proofs[{position}] hash", 32) for h in proof]
        try:
            merkle.verify_inclusion(
                wire.leaf_of(origin, entry), entry["index"], body.size, hashes, body.root_hash
            )
        except merkle.ProofError:
            raise wire.WireError(
                f"entries[{position}] (index {entry['index']}) is not in the log {origin} signed: "
                "forged or altered entry, or a wrong proof"
            ) from None
        checked_proofs.append(hashes)
    return CheckedGroup(
        origin=origin,
        public_key=group["public_key"],
        tier=tier,
        checkpoint=signed,
        size=body.size,
        root=body.root_hash,
        entries=entries,
        proofs=checked_proofs,
        scanned_to=scanned_to,
        proven_from=proven_from,
        steps=steps,
        links=links,
    )


def _walk_via(via, origin: str, public_key: str, known: wire.KnownCheckpoint | None):
    """The last checkpoint of a forwarded chain, once every step is proven consistent with the one
    before it, the first with `known` (a step that is not is a fork: InconsistentCheckpoint)."""
    if known is None or known.size == 0:
        raise wire.WireError("via is a chain from a checkpoint we hold, and we hold none of this log")
    if not isinstance(via, list) or not 0 < len(via) <= MAX_VIA:
        raise wire.WireError(f"via must be a list of 1 to {MAX_VIA} steps")
    current, steps, links = known, [], []
    for position, step in enumerate(via):
        if not isinstance(step, dict) or set(step) != {"checkpoint", "proof"}:
            raise wire.WireError(f"via[{position}] must be {{checkpoint, proof}}")
        signed = step["checkpoint"]
        if not isinstance(signed, str):
            raise wire.WireError(f"via[{position}].checkpoint must be a signed note")
        body = wire.open_checkpoint(signed, origin, public_key, where=f"via[{position}] ")
        if body.size <= current.size:
            raise wire.WireError(
                f"via[{position}] does not grow the log (size {body.size} after {current.size})"
            )
        proof = {"from_size": current.size, "proof": step["proof"]}
        wire._check_consistency(proof, origin, signed, body, current)
        links.append(_link(current.size, body.size, step["proof"]))
        steps.append((body.size, body.root_hash, signed))
        current = wire.KnownCheckpoint(body.size, body.root_hash, signed)
    return current, steps, links


def _link(from_size: int, to_size: int, hashes: list[str]) -> tuple[int, int, list[bytes]]:
    """A consistency proof already checked (wire._check_consistency), as CheckedGroup.links keeps it."""
    return from_size, to_size, [wire.unb64(h, "consistency proof hash", 32) for h in hashes]


def encode_proof(hashes: list[bytes]) -> str:
    """How a stored inclusion proof is kept (sync.PartialProof.proof): base64 hashes, space-separated."""
    return " ".join(wire.b64(h) for h in hashes)


def decode_proof(text: str) -> list[bytes]:
    return [wire.unb64(part, "stored proof hash", 32) for part in text.split()] if text else []
