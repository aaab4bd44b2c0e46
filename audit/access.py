"""Recording reads from the places that serve them: one small access-log write per request.

The views and commands that hand out patient data call these helpers; each builds the compact
detail for one read and appends it with audit.services.record_access.
"""

import getpass
import uuid
from types import SimpleNamespace
from typing import Any

from .models import AccessEvent
from .services import record_access

# A search page holds at most records.fhir.selectors.MAX_COUNT resources; the cap keeps one event small
# even if that limit grows. When cut short, the detail says so (and how many there were).
MAX_PATIENTS_PER_EVENT = 200
# Marks an event that covered every patient on the node (a bulk export), so "who has seen this patient"
# finds it without listing every patient in it.
WHOLE_NODE = "Node"


def command_line_user(name: str | None = None):
    """Who ran a management command: the operating-system account (there is no web user)."""
    try:
        login = name or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        login = "unknown"
    return SimpleNamespace(username=f"{login}@cli"[:150], role="operator", pk=None)


def _as_uuid(text) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(text))
    except (TypeError, ValueError, AttributeError):
        return None


def patient_ids_in(resources: list[dict]) -> list[str]:
    """The distinct patients a list of FHIR resources is about, in first-seen order."""
    seen: dict[str, None] = {}
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "Patient":
            candidate = resource.get("id")
        else:
            subject = resource.get("subject") or resource.get("patient") or {}
            reference = subject.get("reference", "") if isinstance(subject, dict) else ""
            kind, _, candidate = reference.rpartition("/")
            if not kind.endswith("Patient"):
                candidate = None
        pk = _as_uuid(candidate)
        if pk is not None:
            seen.setdefault(str(pk), None)
    return list(seen)


def record_fhir_access(
    request, *, interaction: str, resource_type: str, object_id: str = "", resources: list[dict]
) -> AccessEvent:
    """A FHIR read, search or $everything: one event naming the patient(s) whose data was returned."""
    patients = patient_ids_in(resources)
    detail: dict[str, Any] = {"interaction": interaction, "resources": len(resources)}
    patient_id = None
    if len(patients) == 1:
        patient_id = patients[0]
    elif patients:
        detail["patients"] = patients[:MAX_PATIENTS_PER_EVENT]
        if len(patients) > MAX_PATIENTS_PER_EVENT:
            detail["patients_total"] = len(patients)
    return record_access(
        user=request.user,
        action=AccessEvent.Action.FHIR_READ,
        patient_id=patient_id,
        object_type=resource_type[:40],
        object_id=str(object_id)[:64],
        detail=detail,
        request=request,
    )


def record_bulk_export(*, user, resource_type: str, request=None, detail: dict | None = None) -> AccessEvent:
    """An export of every record of a type (or of the whole node): recorded as covering every patient."""
    return record_access(
        user=user,
        action=AccessEvent.Action.EXPORT,
        object_type=WHOLE_NODE,
        object_id=resource_type[:64],
        detail=detail or {},
        request=request,
    )


def patient_of_record(object_id) -> uuid.UUID | None:
    """The patient a clinical record (any ledgered row) belongs to, or None if it is not on this node."""
    from records.models import (
        Attachment,
        ClinicalNote,
        Condition,
        Encounter,
        MedicationRequest,
        Observation,
        Patient,
    )

    pk = _as_uuid(object_id)
    if pk is None:
        return None
    if Patient.objects.filter(pk=pk).exists():
        return pk
    for model in (Encounter, Observation, Condition, MedicationRequest, ClinicalNote, Attachment):
        found = model.objects.filter(pk=pk).values_list("patient_id", flat=True).first()
        if found is not None:
            return found
    return None
