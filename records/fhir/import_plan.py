"""The bundle importer's working state: one Plan per entry, the ImportResult it reports, and what an
entry would set on a row (to compare with one that already exists)."""

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

from accounts.roles import Capability

from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from .from_fhir import Mapped
from .outcome import Issue

MODELS = {
    "patient": Patient,
    "encounter": Encounter,
    "observation": Observation,
    "condition": Condition,
    "prescription": MedicationRequest,
    "note": ClinicalNote,
    "attachment": Attachment,
}
# A patient's fields an import sets and may correct with PUT.
PATIENT_FIELDS = (
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "birth_date_estimated",
    "village",
    "phone",
)
# Write order: what others refer to first.
ORDER = ["patient", "encounter", "observation", "condition", "prescription", "note", "attachment"]
WRITE_CAPABILITY = {
    "patient": Capability.REGISTER_PATIENTS,
    "encounter": Capability.RECORD_ENCOUNTERS,
    "observation": Capability.RECORD_ENCOUNTERS,
    "note": Capability.RECORD_ENCOUNTERS,
    "condition": Capability.DIAGNOSE_AND_PRESCRIBE,
    "prescription": Capability.DIAGNOSE_AND_PRESCRIBE,
    "attachment": Capability.UPLOAD_ATTACHMENTS,
}


@dataclass
class Plan:
    """One entry on its way in."""

    index: int
    where: str  # "Bundle.entry[3].resource"
    resource: dict
    mapped: Mapped
    method: str = ""  # POST or PUT in a transaction; "" in a collection
    full_url: str = ""
    url_id: uuid.UUID | None = None  # the id in a PUT's url
    if_none_exist: str = ""
    target_id: uuid.UUID | None = None
    existing: object = None  # the row this entry matched or updates
    action: str = ""  # create, match, update, unchanged, skip
    obj: object = None
    resolved: dict = field(default_factory=dict)  # ref name -> Plan | model instance | username
    changes: dict = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.mapped.kind

    @property
    def model(self):
        return MODELS.get(self.kind)

    def final_id(self):
        if self.obj is not None:
            return self.obj.pk
        if self.existing is not None:
            return self.existing.pk
        return self.target_id


@dataclass
class ImportResult:
    bundle_type: str
    plans: list[Plan]

    def count(self, action: str) -> int:
        return sum(1 for plan in self.plans if plan.action == action)

    def summary(self) -> dict:
        by_type: dict = {}
        for plan in self.plans:
            counts = by_type.setdefault(plan.mapped.resource_type, {})
            counts[plan.action] = counts.get(plan.action, 0) + 1
        return {
            "entries": len(self.plans),
            "created": self.count("create"),
            "matched": self.count("match"),
            "updated": self.count("update"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skip"),
            "by_type": by_type,
            "warnings": [str(w) for plan in self.plans for w in plan.warnings],
        }

    def response_bundle(self) -> dict:
        """A transaction-response: one entry per request entry, in order."""
        entries = []
        for plan in self.plans:
            status = {"create": "201 Created", "skip": "200 OK"}.get(plan.action, "200 OK")
            response = {"status": status}
            if plan.model is not None:
                obj = plan.obj or plan.existing
                response["location"] = f"{plan.mapped.resource_type}/{obj.pk}/_history/{obj.version}"
                response["etag"] = f'W/"{obj.version}"'
                response["lastModified"] = (
                    obj.updated_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
                )
            if plan.warnings:
                response["outcome"] = {
                    "resourceType": "OperationOutcome",
                    "issue": [w.as_fhir() for w in plan.warnings],
                }
            entries.append({"response": response})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def id_of(target):
    return target.final_id() if isinstance(target, Plan) else target.pk


def differs(current, wanted) -> bool:
    if isinstance(current, dt.datetime) and isinstance(wanted, dt.datetime):
        return current != wanted
    if current is None or wanted is None:
        return current != wanted
    if hasattr(current, "quantize"):
        return current.compare(wanted) != 0
    return current != wanted


def wanted_fields(plan: Plan) -> dict:
    """The model fields an entry would set, to compare with an existing row."""
    values, resolved = plan.mapped.values, plan.resolved
    practitioner = resolved.get("practitioner")
    if plan.kind == "patient":
        return {name: values[name] for name in PATIENT_FIELDS if name in values}
    common = {}
    if resolved.get("patient") is not None:
        common["patient_id"] = id_of(resolved["patient"])
    if "encounter" in plan.mapped.refs:
        common["encounter_id"] = id_of(resolved["encounter"]) if resolved.get("encounter") else None
    if plan.kind == "encounter":
        fields = {
            "kind": values["kind"],
            "reason": values["reason"].strip(),
            "started_at": values["started_at"],
        }
        if practitioner:
            fields["practitioner"] = practitioner
        return {**common, **fields}
    if plan.kind == "observation":
        return {
            **common,
            "code": values["code"],
            "value_decimal": values["value"],
            "value_text": values["text"].strip(),
            "effective_at": values["effective_at"],
        }
    if plan.kind == "condition":
        return {
            **common,
            "icd10_code": values["icd10_code"],
            "clinical_status": values["clinical_status"],
            "onset_date": values["onset_date"],
        }
    if plan.kind == "prescription":
        fields = {
            "medication": values.get("medication", "").strip(),
            "dose": values["dose"].strip(),
            "frequency": values["frequency"].strip(),
            "duration_days": values["duration_days"],
            "status": values["status"],
        }
        if practitioner:
            fields["prescriber"] = practitioner
        return {**common, **fields}
    if plan.kind == "note":
        return {**common, "text": values.get("text", "").strip()}
    if plan.kind == "attachment":
        return {**common, "sha256": hashlib.sha256(values.get("content", b"")).hexdigest()}
    return {}


def row_of(target):
    if isinstance(target, Plan):
        return target.obj or target.existing
    return target
