"""Receiving batches: each is checked in full before anything is written (wire.check_batch: shape,
the origin's signature on the checkpoint, leaf hashes, consistency proof, ASIC proofs), then stored
by ledger's ingest_remote (which re-verifies against the stored log, stores the segment and applies
it to the records) in one transaction. A fork is refused and its evidence kept, with an alert."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from asicproof.models import Proof
from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from ledger.models import Checkpoint

from . import selectors, wire
from .conflicts import refresh_conflicts
from .errors import ForkRefused, Refused
from .models import ForkEvidence, MirroredProof, Peer

log = logging.getLogger(__name__)


@dataclass
class Applied:
    origin: str
    start: int
    end: int
    applied: int
    size: int


def keep_evidence(fork: ForkRefused, *, peer: Peer | None, source: str) -> ForkEvidence | None:
    if not fork.their_note:
        return None
    evidence, _ = ForkEvidence.objects.get_or_create(
        origin=fork.origin,
        our_note=fork.our_note,
        their_note=fork.their_note,
        peer=peer,
        defaults={"reason": str(fork), "source": source[:255], "proof": fork.proof},
    )
    log.error("fork of %s presented by %s: %s", fork.origin, source, fork)
    _alert_fork(evidence)
    return evidence


def _alert_fork(evidence: ForkEvidence) -> None:
    """The audit console's alert for a fork: one per pair of checkpoints, touched when seen again."""
    from audit.services import raise_alert  # late: the audit app reads sync, not the other way round

    pair = hashlib.sha256(f"{evidence.our_note}\n{evidence.their_note}".encode()).hexdigest()[:32]
    raise_alert(
        kind="fork",
        fingerprint=f"fork:{evidence.origin}:{pair}",
        title=f"Fork of the log of {evidence.origin} presented by {evidence.source}"[:300],
        evidence={
            "origin": evidence.origin,
            "source": evidence.source,
            "reason": evidence.reason,
            "our_checkpoint": evidence.our_note,
            "their_checkpoint": evidence.their_note,
            "consistency_proof": evidence.proof,
            "fork_evidence_id": evidence.pk,
        },
    )


def _store_proofs(checked: wire.CheckedBatch, source: str) -> None:
    """ASIC proofs bound to the batch's checkpoint (already verified by wire), for other origins' logs."""
    if not checked.asic_proofs or checked.origin == ledger_selectors.self_node_id():
        return
    checkpoint = Checkpoint.objects.get(origin=checked.origin, size=checked.size)
    hashes = [proof["hash"] for proof in checked.asic_proofs]
    known = set(MirroredProof.objects.filter(share_hash__in=hashes).values_list("share_hash", flat=True))
    known |= set(Proof.objects.filter(share_hash__in=hashes).values_list("share_hash", flat=True))
    MirroredProof.objects.bulk_create(
        [
            MirroredProof(
                origin=checked.origin,
                checkpoint=checkpoint,
                share_hash=proof["hash"],
                work=proof["work"],
                proof=wire.encode(proof).decode("utf-8"),
                received_from=source[:64],
            )
            for proof in checked.asic_proofs
            if proof["hash"] not in known
        ],
        ignore_conflicts=True,
    )


_STORED = object()


def check_batch(batch, *, peer: Peer | None, source: str, known=_STORED) -> wire.CheckedBatch:
    """The batch's own checks, against our latest stored checkpoint of its origin (or `known`, when the
    caller checks a sequence of batches before applying any). A fork is recorded and refused."""
    origin = batch.get("origin") if isinstance(batch, dict) else None
    if isinstance(origin, str) and origin in selectors.blocked_origins(peer):
        raise ForkRefused(
            f"{source} presented a fork of {origin} before; its copy of that log is refused", origin=origin
        )
    if known is _STORED:
        known = selectors.known_checkpoint(origin) if isinstance(origin, str) else None
    try:
        return wire.check_batch(batch, known=known)
    except wire.InconsistentCheckpoint as fork:
        refusal = ForkRefused(
            str(fork), origin=origin, our_note=fork.our_note, their_note=fork.their_note, proof=fork.proof
        )
        keep_evidence(refusal, peer=peer, source=source)
        raise refusal from None
    except wire.WireError as error:
        raise Refused(str(error)) from None


def apply_checked(checked: wire.CheckedBatch, *, source: str) -> Applied:
    """Store one verified batch through ledger.ingest_remote, with its ASIC proofs, in one transaction.
    A fork raises ForkRefused; the caller keeps its evidence (keep_evidence) outside the transaction."""
    try:
        with transaction.atomic():
            result = ledger_services.ingest_remote(
                origin=checked.origin,
                public_key=checked.public_key,
                tier=checked.tier,
                entries=checked.entries,
                checkpoint_note=checked.checkpoint,
            )
            _store_proofs(checked, source)
            if result.applied:  # the fresh entries are the batch's tail
                refresh_conflicts(e["id"] for e in checked.entries[len(checked.entries) - result.applied :])
    except ledger_services.ForkDetected as fork:
        raise ForkRefused(
            str(fork), origin=checked.origin, our_note=fork.our_note, their_note=fork.their_note
        ) from None
    except ledger_services.IngestRefused as error:
        raise Refused(f"batch of {checked.origin} refused: {error}") from None
    except IntegrityError as error:  # e.g. a record that collides with one of ours on a unique field
        raise Refused(f"batch of {checked.origin} conflicts with records held here: {error}") from None
    return Applied(checked.origin, checked.start, checked.size, result.applied, result.size)


def receive_batch(batch, *, peer: Peer | None, source: str) -> Applied:
    """Check, then apply, one batch; must not run inside a transaction that could roll back evidence."""
    checked = check_batch(batch, peer=peer, source=source)
    try:
        return apply_checked(checked, source=source)
    except ForkRefused as fork:
        keep_evidence(fork, peer=peer, source=source)
        raise


def seal_own_checkpoint() -> None:
    """Sign a checkpoint of our own log if it grew since the last one, so the new entries can travel."""
    origin = ledger_selectors.self_node_id()
    latest = ledger_selectors.latest_checkpoint(origin)
    if ledger_selectors.log_size(origin) > (latest.size if latest else 0):
        try:
            ledger_services.seal_checkpoint()
        except ledger_services.CheckpointRefused as error:
            raise Refused(str(error)) from None
