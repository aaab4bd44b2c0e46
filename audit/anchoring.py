"""Anchors of the access log: its head (count, hash) signed by the node key and written into the ledger.

The hash chain alone shows an edited or removed event in the middle, but an operator with database
access could cut the tail and rewind the head row to match. An anchor is a C2SP signed note
("<origin>\\n<count>\\n<base64 hash>\\n" plus an Ed25519 signature by the node key), stored as a ledger
entry: the ledger is append-only, checkpointed, bound to ASIC work and mirrored to the parent node, so an
anchor cannot be dropped or rewritten quietly, and a chain shorter than (or different from) its newest
anchor is reported by verify_access_chain.
"""

import json
import uuid
from dataclasses import dataclass

from django.db import transaction

from ledger import note
from ledger.entries import log_origin

ANCHOR_OBJECT_TYPE = "AccessLogAnchor"


class AnchorRefused(RuntimeError):
    """The chain is broken now: signing its head would bless the damage."""


@dataclass(frozen=True)
class Anchor:
    count: int
    hash: str
    note: str
    ledger_index: int
    signed_by_us: bool
    problem: str = ""


def anchor_origin(node_id: str) -> str:
    """The signed note's origin line and key name: the node's log origin, narrowed to the access log."""
    return f"{log_origin(node_id)}/access-log"


def anchor_object_id(node_id: str) -> uuid.UUID:
    """One ledger object per node, each anchor a new version of it (its history is every anchor)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"siliconhealth:access-log:{node_id}")


def _read_anchor(entry, identity) -> Anchor:
    """Parse and check one anchor entry: the note must carry a valid signature by this node's key."""
    try:
        payload = json.loads(entry.payload)
        text = payload["note"]
        body = note.parse_checkpoint(
            note.open_note(text, anchor_origin(identity.node_id), identity.public_key_bytes)
        )
        if body.origin != anchor_origin(identity.node_id):
            raise note.NoteError(f"anchor is for {body.origin!r}, not this node's access log")
    except (ValueError, KeyError, TypeError) as error:  # NoteError is a ValueError
        problem = f"the anchor at ledger entry {entry.index} is invalid: {error}"
        return Anchor(0, "", "", entry.index, False, problem)
    return Anchor(body.size, body.root_hash.hex(), text, entry.index, True)


def newest_anchor() -> Anchor | None:
    """The newest anchor this node wrote into its own log, checked; None if it never anchored."""
    from ledger.selectors import node_identity

    identity = node_identity()
    entry = _own_anchor_entries(identity.node_id).first()
    return _read_anchor(entry, identity) if entry is not None else None


def _own_anchor_entries(node_id: str):
    """This node's anchor entries, newest first, found through the (object_id, hlc) index: all anchors
    are versions of one object, and in one origin's log the hlc grows with the index."""
    from ledger.models import Entry

    return Entry.objects.filter(
        object_id=anchor_object_id(node_id), origin=node_id, object_type=ANCHOR_OBJECT_TYPE
    ).order_by("-hlc", "-index")


def anchors(*, limit: int = 20) -> list[Anchor]:
    """The newest anchors, newest first (for the console)."""
    from ledger.selectors import node_identity

    identity = node_identity()
    rows = _own_anchor_entries(identity.node_id)
    return [_read_anchor(entry, identity) for entry in rows[:limit]]


def sign_anchor(*, count: int, chain_hash: str, identity) -> str:
    body = note.format_checkpoint(anchor_origin(identity.node_id), count, bytes.fromhex(chain_hash))
    return note.sign_note(body, anchor_origin(identity.node_id), identity.private_key)


def anchor_access_log(*, author: str = "audit-anchor") -> Anchor:
    """Verify the whole chain, then sign what was verified (count, hash of its last event) and append
    that anchor to the ledger; a no-op if the log has not grown since the newest anchor.

    The walk takes no lock (on a long log it takes seconds, and every read appends to the log), so the
    anchor covers the events verified, even if more were appended meanwhile; the next anchor covers
    those. A broken chain is never anchored: it raises a tamper alert instead.
    """
    from audit.models import Alert
    from audit.selectors import verify_access_chain
    from audit.services import raise_alert
    from ledger import services as ledger_services
    from ledger.selectors import node_identity

    identity = node_identity()
    check = verify_access_chain()
    if check.ok:
        with transaction.atomic():
            previous = newest_anchor()
            if previous is not None and previous.signed_by_us and previous.count >= check.checked:
                return previous  # nothing new (or a concurrent anchor already covers more)
            signed = sign_anchor(count=check.checked, chain_hash=check.last_hash, identity=identity)
            entry = ledger_services.append(
                kind="create" if previous is None else "update",
                object_type=ANCHOR_OBJECT_TYPE,
                object_id=anchor_object_id(identity.node_id),
                payload={"count": check.checked, "hash": check.last_hash, "note": signed},
                author=author,
            )
        return Anchor(check.checked, check.last_hash, signed, entry.index, True)
    raise_alert(
        kind=Alert.Kind.TAMPER,
        fingerprint=f"access-log:{check.problem}:{check.event_id}"[:200],
        title=f"The access log is broken: {check.problem}",
        evidence={"checked": check.checked, "event_id": check.event_id, "anchored": check.anchored},
    )
    raise AnchorRefused(f"not anchoring a broken access log: {check.problem}")
