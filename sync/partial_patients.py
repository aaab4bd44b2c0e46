"""Which patients a partial child is served (the parent's side, see partial.py): those registered at
the child or below it, those referred to it (ServedPatient, `sync refer`), and every patient linked to
those by merges; and the records about them that this node holds."""

from __future__ import annotations

from ledger import selectors as ledger_selectors
from ledger.registry import ledgered_models

from .models import Peer, ServedPatient, SyncState
from .partial_wire import PartialRefused


def refer_patient(*, peer: Peer, patient_id, referred_by: str) -> ServedPatient:
    """From now on, send `peer` every entry about this patient, past ones included."""
    from records.models import Patient

    if peer.revoked:
        raise PartialRefused(f"{peer.node_id} is revoked")
    if not Patient.objects.filter(pk=patient_id).exists():
        raise PartialRefused(f"no patient {patient_id} on this node")
    served, _ = ServedPatient.objects.get_or_create(
        peer=peer, patient_id=patient_id, defaults={"referred_by": referred_by[:150]}
    )
    return served


def _records_of(patient_ids: set) -> set:
    """The patients and every record about them that this node holds rows for."""
    ids = set(patient_ids)
    for ledgered in ledgered_models():
        if any(f.attname == "patient_id" for f in ledgered.model._meta.concrete_fields):
            for start in range(0, len(patient_ids), 500):
                chunk = list(patient_ids)[start : start + 500]
                ids |= set(ledgered.model.objects.filter(patient_id__in=chunk).values_list("pk", flat=True))
    return ids


def _registered_or_referred(peer: Peer) -> set:
    from records.models import Patient

    state = SyncState.objects.filter(peer=peer).first()
    below = {peer.node_id} | set(state.peer_sizes if state else {})
    below.discard(ledger_selectors.self_node_id())
    ids = set(Patient.objects.filter(origin__in=below).values_list("pk", flat=True))
    return ids | set(ServedPatient.objects.filter(peer=peer).values_list("patient_id", flat=True))


def served_patient_ids(peer: Peer) -> set:
    """Patients registered at the child or below it (an origin whose whole log the child holds, as
    its last version vector told us: its own and those its children pushed up), or referred to it,
    and the patients linked to those by merges."""
    return _with_merges(_registered_or_referred(peer))


def _refer_merge_partners(peer: Peer, partners: set) -> None:
    """A patient linked by a merge to a served one becomes a referral of its own: the merge may come
    after the child's cursor passed that patient's records, which are then sent once, as any
    referral's older entries are."""
    ServedPatient.objects.bulk_create(
        [ServedPatient(peer=peer, patient_id=patient, referred_by="merge") for patient in sorted(partners)],
        ignore_conflicts=True,
    )


def _with_merges(ids: set) -> set:
    """The patients and every patient linked to them by merges, both ways: a chart shows the records of
    the patients merged into it (records.selectors.patient_group_ids), and a merged patient's row
    points at the one it was merged into, which the child must hold to apply that merge."""
    from records.models import Patient

    group, frontier = set(ids), list(ids)
    while frontier:
        linked: set = set()
        for first in range(0, len(frontier), 500):
            chunk = frontier[first : first + 500]
            linked |= set(Patient.objects.filter(merged_into__in=chunk).values_list("pk", flat=True))
            linked |= set(
                Patient.objects.filter(pk__in=chunk, merged_into__isnull=False).values_list(
                    "merged_into", flat=True
                )
            )
        frontier = list(linked - group)
        group |= linked
    return group
