"""Records <-> FHIR R4 resources.

Out: `to_fhir(obj, ctx)` gives one resource as a dict (Decimals kept as Decimals; see jsonio).
In: `from_fhir(resource)` gives a `Mapped` (service arguments plus the references still to resolve)
and the issues found; paths in issues are relative to the resource ("name[0].family").

| record             | FHIR resource                  | notes                                             |
|--------------------|--------------------------------|---------------------------------------------------|
| Patient            | Patient                        | patient number as identifier PATIENT_NUMBER       |
| Encounter          | Encounter                      | kind as type (local system) and class (v3-ActCode)|
| Observation        | Observation                    | LOINC code, UCUM valueQuantity or valueString     |
| Condition          | Condition                      | ICD-10 code, clinicalStatus active/resolved       |
| MedicationRequest  | MedicationRequest              | dose, frequency, duration in dosageInstruction[0] |
| ClinicalNote       | DocumentReference (11506-3)    | text/plain content                                |
| Attachment         | DocumentReference              | watermark status and SHA-256 as extensions        |
| user name (string) | Practitioner                   | id derived from the user name                     |
| this node          | Organization, Location         | id derived from the node id                       |
| ledger entry       | Provenance                     | entry index, leaf hash, signed checkpoint         |
"""

import base64
import binascii
import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone, translation

from ..codes import OBSERVATION_KINDS, QUALITATIVE_LABS, icd10_codes
from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from ..patient_number import is_valid_patient_number
from ..uploads import UploadError, sniff_upload
from .outcome import Issue

# Identifier and code systems (documented in the CapabilityStatement and the OpenAPI description).
PATIENT_NUMBER = "urn:siliconhealth:patient-number"
USERNAME = "urn:siliconhealth:username"
NODE_ID = "urn:siliconhealth:node-id"
LOCAL_CODE = "urn:siliconhealth:code"  # our "sh:..." observation codes, without the "sh:" prefix
ENCOUNTER_KIND = "urn:siliconhealth:encounter-kind"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
DOCUMENT_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"

EXTENSION = "https://siliconhealth.org/fhir/StructureDefinition/"
EXT_BIRTH_DATE_ESTIMATED = EXTENSION + "birth-date-estimated"
EXT_WATERMARK = EXTENSION + "watermark-status"
EXT_SHA256 = EXTENSION + "sha256"
EXT_DOSE_TEXT = EXTENSION + "dose-text"
EXT_LEDGER_ORIGIN = EXTENSION + "ledger-origin"
EXT_LEDGER_INDEX = EXTENSION + "ledger-index"
EXT_LEAF_HASH = EXTENSION + "ledger-leaf-hash"
EXT_CHECKPOINT_SIZE = EXTENSION + "ledger-checkpoint-size"

# Ids this node derives (the same on every node, so exports compare equal across nodes).
NAMESPACE = uuid.UUID("5b0f2d8e-6c1a-4f7e-9a51-3d2c8e7b9f10")

NOTE_TYPES = {
    "11506-3": "Progress note",
    "34109-9": "Note",
    "11488-4": "Consult note",
    "28570-0": "Procedure note",
}
NOTE_TYPE = "11506-3"
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"

ENCOUNTER_CLASS = {
    "outpatient": ("AMB", "ambulatory"),
    "antenatal": ("AMB", "ambulatory"),
    "follow_up": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
    "home_visit": ("HH", "home health"),
}
CLASS_TO_KIND = {"AMB": "outpatient", "EMER": "emergency", "HH": "home_visit"}
ENCOUNTER_STATUSES_IN = {"finished", "in-progress", "arrived", "triaged", "onleave"}
OBSERVATION_STATUSES_IN = {"final", "amended", "corrected"}
CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}
CONDITION_STATUS_IN = {
    "active": "active",
    "recurrence": "active",
    "relapse": "active",
    "resolved": "resolved",
    "inactive": "resolved",
    "remission": "resolved",
}
MEDICATION_STATUSES_IN = {"active", "completed", "stopped"}
GENDERS = {"male", "female", "other", "unknown"}
UNIT_DISPLAY = {"Cel": "°C", "mm[Hg]": "mmHg", "{copies}/mL": "copies/mL", "/uL": "/µL"}
ICD10_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
LOINC_PATTERN = re.compile(r"^[0-9]{1,7}-[0-9]$")
DOSE_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?) (\S(?:.*\S)?)$")
DURATION_DAYS = {"d": 1, "wk": 7}
ATTACHMENT_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "application/pdf": ".pdf",
    "application/dicom": ".dcm",
}

# Top-level elements every mapper reads or may drop silently (metadata and generated narrative).
_ALWAYS = {"resourceType", "id", "meta", "text", "language", "implicitRules"}

CLINICAL_TYPES = ("Encounter", "Observation", "Condition", "MedicationRequest", "DocumentReference")
WRITABLE_TYPES = ("Patient", *CLINICAL_TYPES)
REFERENCE_ONLY_TYPES = ("Practitioner", "Organization", "Location", "Provenance")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def practitioner_id(username: str) -> str:
    return derived_id("practitioner", username)


def organization_id(node_id: str) -> str:
    return derived_id("organization", node_id)


def location_id(node_id: str) -> str:
    return derived_id("location", node_id)


def identifier_patient_id(system: str, value: str) -> uuid.UUID:
    """The id a patient known only by another system's identifier gets, so that importing it twice
    (without a UUID id) finds the same patient."""
    return uuid.UUID(derived_id("identifier", system, value))


def as_uuid(text) -> uuid.UUID | None:
    if not isinstance(text, str) or len(text) != 36:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------
# Values


def instant(value: dt.datetime) -> str:
    """A datetime as the canonical form uses it: UTC, "Z", microseconds only when there are any."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def plain_decimal(value: Decimal) -> Decimal:
    """38.600 -> 38.6, 120.000 -> 120: the stored scale is the database's, not the measurement's."""
    normalized = value.normalize()
    if normalized.as_tuple().exponent > 0:
        normalized = normalized.quantize(Decimal(1))
    return normalized


def english(label) -> str:
    with translation.override("en"):
        return str(label)


def reference(resource_type: str, object_id) -> dict:
    return {"reference": f"{resource_type}/{object_id}"}


def meta(obj) -> dict:
    return {
        "versionId": str(obj.version),
        "lastUpdated": instant(obj.updated_at),
        "source": f"urn:siliconhealth:node:{obj.origin}",
    }


# ---------------------------------------------------------------------------------------------------
# Out


@dataclass
class ExportContext:
    """What resource mapping needs beyond the row: where attachments can be fetched, whether to embed
    their bytes, and display names of users (username -> full name)."""

    base_url: str = ""
    embed_attachments: bool = True
    user_names: dict = field(default_factory=dict)


def patient_to_fhir(patient: Patient, ctx: ExportContext | None = None) -> dict:
    resource = {"resourceType": "Patient", "id": str(patient.pk), "meta": meta(patient)}
    if patient.birth_date_estimated:
        resource["extension"] = [{"url": EXT_BIRTH_DATE_ESTIMATED, "valueBoolean": True}]
    resource["identifier"] = [
        {
            "use": "official",
            "type": {
                "coding": [{"system": IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]
            },
            "system": PATIENT_NUMBER,
            "value": patient.patient_number,
        }
    ]
    resource["active"] = patient.merged_into_id is None
    resource["name"] = [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}]
    if patient.phone:
        resource["telecom"] = [{"system": "phone", "value": patient.phone, "use": "mobile"}]
    resource["gender"] = patient.sex
    resource["birthDate"] = patient.birth_date.isoformat()
    if patient.village:
        resource["address"] = [{"use": "home", "city": patient.village}]
    if patient.merged_into_id:
        resource["link"] = [{"other": reference("Patient", patient.merged_into_id), "type": "replaced-by"}]
    return resource


def practitioner_ref(username: str) -> dict:
    return {"reference": f"Practitioner/{practitioner_id(username)}", "display": username}


def encounter_to_fhir(encounter: Encounter, ctx: ExportContext | None = None) -> dict:
    code, display = ENCOUNTER_CLASS.get(encounter.kind, ("AMB", "ambulatory"))
    label = english(Encounter.Kind(encounter.kind).label)
    resource = {
        "resourceType": "Encounter",
        "id": str(encounter.pk),
        "meta": meta(encounter),
        "status": "finished",
        "class": {"system": ACT_CODE, "code": code, "display": display},
        "type": [{"coding": [{"system": ENCOUNTER_KIND, "code": encounter.kind, "display": label}]}],
        "subject": reference("Patient", encounter.patient_id),
        "participant": [{"individual": practitioner_ref(encounter.practitioner)}],
        "period": {"start": instant(encounter.started_at)},
    }
    if encounter.reason:
        resource["reasonCode"] = [{"text": encounter.reason}]
    return resource


def observation_code(code: str) -> tuple[str, str]:
    if code.startswith("sh:"):
        return LOCAL_CODE, code[3:]
    return LOINC, code


def observation_to_fhir(observation: Observation, ctx: ExportContext | None = None) -> dict:
    system, code = observation_code(observation.code)
    resource = {
        "resourceType": "Observation",
        "id": str(observation.pk),
        "meta": meta(observation),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": observation.category,
                        "display": CATEGORY_DISPLAY.get(observation.category, observation.category),
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code, "display": observation.display}]},
        "subject": reference("Patient", observation.patient_id),
    }
    if observation.encounter_id:
        resource["encounter"] = reference("Encounter", observation.encounter_id)
    resource["effectiveDateTime"] = instant(observation.effective_at)
    resource["issued"] = instant(observation.created_at)
    if observation.value_decimal is not None:
        quantity = {"value": plain_decimal(Decimal(observation.value_decimal))}
        if observation.unit:
            quantity.update(
                unit=UNIT_DISPLAY.get(observation.unit, observation.unit), system=UCUM, code=observation.unit
            )
        resource["valueQuantity"] = quantity
    elif observation.value_text:
        resource["valueString"] = observation.value_text
    return resource


def condition_to_fhir(condition: Condition, ctx: ExportContext | None = None) -> dict:
    category = "encounter-diagnosis" if condition.encounter_id else "problem-list-item"
    resource = {
        "resourceType": "Condition",
        "id": str(condition.pk),
        "meta": meta(condition),
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": condition.clinical_status}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": ICD10, "code": condition.icd10_code, "display": condition.display}]},
        "subject": reference("Patient", condition.patient_id),
    }
    if condition.encounter_id:
        resource["encounter"] = reference("Encounter", condition.encounter_id)
    if condition.onset_date:
        resource["onsetDateTime"] = condition.onset_date.isoformat()
    resource["recordedDate"] = instant(condition.created_at)
    return resource


def _dose_quantity(dose: str) -> dict | None:
    match = DOSE_PATTERN.match(dose)
    if not match:
        return None
    return {"value": Decimal(match.group(1)), "unit": match.group(2)}


def medication_request_to_fhir(request: MedicationRequest, ctx: ExportContext | None = None) -> dict:
    dosage: dict = {"sequence": 1}
    words = [request.dose, request.frequency]
    if request.duration_days:
        words.append(f"for {request.duration_days} days")
    text = " ".join(word for word in words if word)
    if text:
        dosage["text"] = text
    quantity = _dose_quantity(request.dose) if request.dose else None
    if request.dose and quantity is None:
        dosage["extension"] = [{"url": EXT_DOSE_TEXT, "valueString": request.dose}]
    timing: dict = {}
    if request.duration_days:
        timing["repeat"] = {
            "boundsDuration": {"value": request.duration_days, "unit": "days", "system": UCUM, "code": "d"}
        }
    if request.frequency:
        timing["code"] = {"text": request.frequency}
    if timing:
        dosage["timing"] = timing
    if quantity:
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    resource = {
        "resourceType": "MedicationRequest",
        "id": str(request.pk),
        "meta": meta(request),
        "status": request.status,
        "intent": "order",
        "medicationCodeableConcept": {"text": request.medication},
        "subject": reference("Patient", request.patient_id),
    }
    if request.encounter_id:
        resource["encounter"] = reference("Encounter", request.encounter_id)
    resource["authoredOn"] = instant(request.created_at)
    resource["requester"] = practitioner_ref(request.prescriber)
    if len(dosage) > 1:
        resource["dosageInstruction"] = [dosage]
    return resource


def note_to_fhir(note: ClinicalNote, ctx: ExportContext | None = None) -> dict:
    resource = {
        "resourceType": "DocumentReference",
        "id": str(note.pk),
        "meta": meta(note),
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": NOTE_TYPE, "display": NOTE_TYPES[NOTE_TYPE]}]},
        "category": [{"coding": [{"system": DOCUMENT_CATEGORY, "code": "clinical-note"}]}],
        "subject": reference("Patient", note.patient_id),
        "date": instant(note.created_at),
        "author": [practitioner_ref(note.author)],
        "content": [
            {
                "attachment": {
                    "contentType": NOTE_MEDIA_TYPE,
                    "data": base64.b64encode(note.text.encode("utf-8")).decode("ascii"),
                }
            }
        ],
    }
    if note.encounter_id:
        resource["context"] = {"encounter": [reference("Encounter", note.encounter_id)]}
    return resource


def attachment_to_fhir(attachment: Attachment, ctx: ExportContext | None = None) -> dict:
    ctx = ctx or ExportContext()
    content = {
        "extension": [{"url": EXT_SHA256, "valueString": attachment.sha256}],
        "contentType": attachment.media_type,
    }
    if ctx.embed_attachments:
        with attachment.file.open("rb") as handle:
            content["data"] = base64.b64encode(handle.read()).decode("ascii")
    else:
        content["url"] = f"{ctx.base_url.rstrip('/')}/attachments/{attachment.pk}/file"
    content.update(
        size=attachment.size_bytes, title=attachment.title, creation=instant(attachment.created_at)
    )
    resource = {
        "resourceType": "DocumentReference",
        "id": str(attachment.pk),
        "meta": meta(attachment),
        "extension": [{"url": EXT_WATERMARK, "valueCode": attachment.watermark_status}],
        "status": "current",
        "subject": reference("Patient", attachment.patient_id),
        "date": instant(attachment.created_at),
        "author": [practitioner_ref(attachment.uploaded_by)],
        "description": attachment.title,
        "content": [{"attachment": content}],
    }
    if attachment.encounter_id:
        resource["context"] = {"encounter": [reference("Encounter", attachment.encounter_id)]}
    return resource


def practitioner_to_fhir(username: str, full_name: str = "") -> dict:
    return {
        "resourceType": "Practitioner",
        "id": practitioner_id(username),
        "identifier": [{"system": USERNAME, "value": username}],
        "name": [{"text": full_name or username}],
    }


def organization_to_fhir(node) -> dict:
    return {
        "resourceType": "Organization",
        "id": organization_id(node.node_id),
        "identifier": [{"system": NODE_ID, "value": node.node_id}],
        "active": not node.revoked,
        "type": [
            {"coding": [{"system": ORGANIZATION_TYPE, "code": "prov", "display": "Healthcare Provider"}]}
        ],
        "name": f"SiliconHealth {node.tier.replace('_', ' ')} {node.prefix}".strip(),
    }


def location_to_fhir(node) -> dict:
    return {
        "resourceType": "Location",
        "id": location_id(node.node_id),
        "identifier": [{"system": NODE_ID, "value": node.node_id}],
        "status": "active",
        "name": f"SiliconHealth {node.tier.replace('_', ' ')} {node.prefix}".strip(),
        "mode": "instance",
        "managingOrganization": reference("Organization", organization_id(node.node_id)),
    }


def provenance_to_fhir(entry, target_type: str, target_version: int | None, checkpoint=None) -> dict:
    """The ledger's account of a record's latest change: which log entry (origin, index, leaf hash)
    and, once sealed, the signed checkpoint (C2SP signed note) that covers it."""
    target = f"{target_type}/{entry.object_id}"
    if target_version:
        target += f"/_history/{target_version}"
    operation = {"create": "CREATE", "update": "UPDATE", "delete": "DELETE"}.get(entry.kind, "UPDATE")
    extension = [
        {"url": EXT_LEDGER_ORIGIN, "valueString": entry.origin},
        {"url": EXT_LEDGER_INDEX, "valueInteger": entry.index},
        {"url": EXT_LEAF_HASH, "valueBase64Binary": base64.b64encode(bytes(entry.leaf_hash)).decode("ascii")},
    ]
    resource = {
        "resourceType": "Provenance",
        "id": derived_id("provenance", entry.origin, str(entry.index)),
        "extension": extension,
        "target": [{"reference": target}],
        "recorded": instant(entry.created_at),
        "activity": {"coding": [{"system": DATA_OPERATION, "code": operation}]},
        "agent": [
            {
                "type": {"coding": [{"system": PROVENANCE_AGENT, "code": "author"}]},
                "who": {"identifier": {"system": USERNAME, "value": entry.author}, "display": entry.author},
            },
            {
                "type": {"coding": [{"system": PROVENANCE_AGENT, "code": "custodian"}]},
                "who": reference("Organization", organization_id(entry.origin)),
            },
        ],
    }
    if checkpoint is not None:
        resource["extension"].append({"url": EXT_CHECKPOINT_SIZE, "valueInteger": checkpoint.size})
        resource["signature"] = [
            {
                "type": [
                    {
                        "system": SIGNATURE_TYPE,
                        "code": "1.2.840.10065.1.12.1.5",
                        "display": "Verification Signature",
                    }
                ],
                "when": instant(checkpoint.created_at),
                "who": reference("Organization", organization_id(checkpoint.origin)),
                "sigFormat": "text/plain",
                "data": base64.b64encode(checkpoint.note.encode("utf-8")).decode("ascii"),
            }
        ]
    return resource


TO_FHIR = {
    Patient: patient_to_fhir,
    Encounter: encounter_to_fhir,
    Observation: observation_to_fhir,
    Condition: condition_to_fhir,
    MedicationRequest: medication_request_to_fhir,
    ClinicalNote: note_to_fhir,
    Attachment: attachment_to_fhir,
}

RESOURCE_TYPE = {
    Patient: "Patient",
    Encounter: "Encounter",
    Observation: "Observation",
    Condition: "Condition",
    MedicationRequest: "MedicationRequest",
    ClinicalNote: "DocumentReference",
    Attachment: "DocumentReference",
}


def to_fhir(obj, ctx: ExportContext | None = None) -> dict:
    return TO_FHIR[type(obj)](obj, ctx)


# ---------------------------------------------------------------------------------------------------
# In


@dataclass
class RefSpec:
    reference: str  # as written: "urn:uuid:...", "Patient/123", "Patient?identifier=sys|value"
    path: str  # element path, relative to the resource
    types: tuple[str, ...]
    display: str = ""


@dataclass
class Mapped:
    """A resource read into service arguments. `kind` names the service (see importer.WRITERS);
    references stay unresolved until the importer knows the whole bundle."""

    resource_type: str
    kind: str
    values: dict = field(default_factory=dict)
    refs: dict[str, RefSpec] = field(default_factory=dict)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    source_id: uuid.UUID | None = None


class Reader:
    """Collects issues while reading one resource; paths are relative to the resource."""

    def __init__(self, resource: dict):
        self.resource = resource
        self.issues: list[Issue] = []
        self.used: set[str] = set(_ALWAYS)

    def error(self, code: str, message: str, path: str = "") -> None:
        self.issues.append(Issue(code, message, path))

    def warn(self, message: str, path: str = "") -> None:
        self.issues.append(Issue("informational", message, path, severity="warning"))

    def get(self, name: str, default=None):
        self.used.add(name)
        return self.resource.get(name, default)

    def finish(self) -> None:
        for name in self.resource:
            if name.startswith("_"):  # primitive extensions (ids, comments) belong to the element
                continue
            if name not in self.used:
                self.warn(f"{name} is not stored by this node and was dropped", name)

    def reference(self, value, path: str, types: tuple[str, ...], *, required: bool) -> RefSpec | None:
        if not value:
            if required:
                self.error("required", f"a reference to a {' or '.join(types)} is required", path)
            return None
        text = value.get("reference")
        if not text:
            if value.get("identifier") and value["identifier"].get("value"):
                ident = value["identifier"]
                text = f"{types[0]}?identifier={ident.get('system', '')}|{ident['value']}"
            else:
                if required:
                    self.error(
                        "required", "the reference has no reference or identifier", f"{path}.reference"
                    )
                return None
        return RefSpec(text, f"{path}.reference", types, value.get("display", ""))

    def datetime(self, text: str | None, path: str, *, required: bool, date_only_ok: bool = True):
        if not text:
            if required:
                self.error("required", "a date and time is required", path)
            return None
        if len(text) == 10:  # a date alone: the clinic's midnight
            if not date_only_ok:
                self.error("value", "a time is required, not only a date", path)
                return None
            day = dt.date.fromisoformat(text)
            return timezone.make_aware(dt.datetime.combine(day, dt.time()))
        if len(text) < 10:
            self.error("value", f"{text!r} is not precise enough: give at least a full date", path)
            return None
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            self.error("value", f"{text!r} is not a valid date and time", path)
            return None
        if value.tzinfo is None:
            self.error("value", "a date with a time needs a time zone", path)
            return None
        return value


def _codings(concept) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _coding(concept, system: str) -> dict | None:
    for coding in _codings(concept):
        if coding.get("system") == system and coding.get("code"):
            return coding
    return None


def _extension(element: dict, url: str):
    for ext in element.get("extension") or []:
        if ext.get("url") == url:
            return ext
    return None


def _known_extensions(reader: Reader, element: dict, urls: set[str], path: str) -> None:
    for position, ext in enumerate(element.get("extension") or []):
        if ext.get("url") not in urls:
            reader.warn(
                f"extension {ext.get('url')} is not understood and was dropped", f"{path}[{position}]"
            )


def _source_id(resource: dict) -> uuid.UUID | None:
    return as_uuid(resource.get("id"))


def patient_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    mapped = Mapped("Patient", "patient", source_id=_source_id(resource))
    values = mapped.values
    for position, ident in enumerate(r.get("identifier") or []):
        system, value = ident.get("system"), ident.get("value")
        if not value:
            continue
        if system == PATIENT_NUMBER:
            if not is_valid_patient_number(value):
                r.error("value", f"{value!r} is not a valid patient number", f"identifier[{position}].value")
                continue
            values["patient_number"] = value.strip().upper()
        elif system:
            mapped.identifiers.append((system, value))
    names = r.get("name") or []
    name = next((n for n in names if n.get("use") == "official"), None) or next(
        (n for n in names if n.get("use") in {None, "usual"}), names[0] if names else None
    )
    if name is None:
        r.error("required", "a name (family and given) is required", "name")
    else:
        where = f"name[{names.index(name)}]"
        given = " ".join(part.strip() for part in name.get("given") or [] if part.strip())
        if not given:
            r.error("required", "a given name is required", f"{where}.given")
        if not (name.get("family") or "").strip():
            r.error("required", "a family name is required", f"{where}.family")
        values["given_name"] = given
        values["family_name"] = (name.get("family") or "").strip()
    gender = r.get("gender") or "unknown"
    if gender not in GENDERS:
        r.error("value", f"gender must be one of {', '.join(sorted(GENDERS))}", "gender")
    values["sex"] = gender
    birth = r.get("birthDate")
    estimated = False
    ext = _extension(resource, EXT_BIRTH_DATE_ESTIMATED)
    r.used.add("extension")
    _known_extensions(r, resource, {EXT_BIRTH_DATE_ESTIMATED}, "extension")
    if ext is not None:
        estimated = bool(ext.get("valueBoolean"))
    if not birth:
        r.error("required", "a birth date is required (an estimate will do)", "birthDate")
    else:
        if len(birth) == 4:
            birth, estimated = f"{birth}-07-01", True
        elif len(birth) == 7:
            birth, estimated = f"{birth}-15", True
        try:
            values["birth_date"] = dt.date.fromisoformat(birth)
        except ValueError:
            r.error("value", f"{birth!r} is not a valid date", "birthDate")
    values["birth_date_estimated"] = estimated
    telecom = r.get("telecom") or []
    phone = next((t for t in telecom if t.get("system") in {"phone", "sms"} and t.get("value")), None)
    values["phone"] = phone["value"].strip() if phone else ""
    addresses = r.get("address") or []
    address = next((a for a in addresses if a.get("city") or a.get("district")), None)
    values["village"] = (address.get("city") or address.get("district") or "").strip() if address else ""
    r.get("active")
    for position, link in enumerate(r.get("link") or []):
        if link.get("type") == "replaced-by":
            mapped.refs["merged_into"] = r.reference(
                link.get("other"), f"link[{position}].other", ("Patient",), required=True
            )
        else:
            r.warn(f"a {link.get('type')} link is not stored", f"link[{position}]")
    r.finish()
    return mapped, r.issues


def _kind_of(resource: dict) -> str | None:
    for concept in resource.get("type") or []:
        coding = _coding(concept, ENCOUNTER_KIND)
        if coding:
            return coding["code"]
    klass = resource.get("class") or {}
    return CLASS_TO_KIND.get(klass.get("code"), "outpatient")


def encounter_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    mapped = Mapped("Encounter", "encounter", source_id=_source_id(resource))
    status = r.get("status")
    if status not in ENCOUNTER_STATUSES_IN:
        r.error(
            "not-supported",
            f"an encounter with status {status!r} is not recorded here (only a visit that took place: "
            f"{', '.join(sorted(ENCOUNTER_STATUSES_IN))})",
            "status",
        )
    r.get("class")
    r.get("type")
    kind = _kind_of(resource)
    if kind not in Encounter.Kind.values:
        r.error("value", f"unknown encounter kind {kind!r}", "type")
    mapped.values["kind"] = kind
    mapped.refs["patient"] = r.reference(r.get("subject"), "subject", ("Patient",), required=True)
    period = r.get("period") or {}
    mapped.values["started_at"] = r.datetime(period.get("start"), "period.start", required=True)
    reasons = r.get("reasonCode") or []
    reason = ""
    if reasons:
        first = reasons[0]
        reason = first.get("text") or next(
            (c.get("display") for c in _codings(first) if c.get("display")), ""
        )
    mapped.values["reason"] = reason
    for position, participant in enumerate(r.get("participant") or []):
        individual = participant.get("individual")
        if individual and (
            individual.get("reference", "").startswith(("Practitioner", "urn:")) or individual.get("display")
        ):
            mapped.refs["practitioner"] = r.reference(
                individual, f"participant[{position}].individual", ("Practitioner",), required=False
            )
            break
    r.finish()
    return mapped, r.issues


def _observation_code(r: Reader, concept) -> tuple[str, str]:
    for coding in _codings(concept):
        system, code = coding.get("system"), coding.get("code") or ""
        if system == LOINC and LOINC_PATTERN.match(code):
            return code, coding.get("display") or concept.get("text") or ""
        if system == LOCAL_CODE and f"sh:{code}" in QUALITATIVE_LABS:
            return f"sh:{code}", coding.get("display") or ""
    r.error("not-supported", "the code needs a LOINC coding (system http://loinc.org)", "code")
    return "", ""


def observation_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    mapped = Mapped("Observation", "observation", source_id=_source_id(resource))
    values = mapped.values
    status = r.get("status")
    if status not in OBSERVATION_STATUSES_IN:
        r.error(
            "not-supported",
            f"only results with status final, amended or corrected are stored, not {status!r}",
            "status",
        )
    code, display = _observation_code(r, r.get("code"))
    values["code"], values["display"] = code, display
    category = ""
    for concept in r.get("category") or []:
        coding = _coding(concept, OBSERVATION_CATEGORY)
        if coding and coding["code"] in Observation.Category.values:
            category = coding["code"]
    if code and code not in OBSERVATION_KINDS and code not in QUALITATIVE_LABS and not category:
        r.error("required", "a category (vital-signs or laboratory) is required for this code", "category")
    values["category"] = category
    mapped.refs["patient"] = r.reference(r.get("subject"), "subject", ("Patient",), required=True)
    encounter = r.reference(r.get("encounter"), "encounter", ("Encounter",), required=False)
    if encounter:
        mapped.refs["encounter"] = encounter
    when = (
        r.get("effectiveDateTime")
        or r.get("effectiveInstant")
        or (r.get("effectivePeriod") or {}).get("start")
    )
    values["effective_at"] = r.datetime(when, "effectiveDateTime", required=True)
    issued = r.get("issued")
    values["created_at"] = r.datetime(issued, "issued", required=False) if issued else None
    quantity, text = r.get("valueQuantity"), r.get("valueString")
    concept, integer = r.get("valueCodeableConcept"), r.get("valueInteger")
    values["value"], values["text"], values["unit"] = None, "", ""
    if quantity is not None:
        if quantity.get("value") is None:
            r.error("required", "a quantity needs a value", "valueQuantity.value")
        else:
            values["value"] = Decimal(quantity["value"])
        if quantity.get("system") == UCUM and quantity.get("code"):
            values["unit"] = quantity["code"]
        elif quantity.get("code") or quantity.get("unit"):
            unit = quantity.get("code") or quantity.get("unit")
            kind = OBSERVATION_KINDS.get(code)
            if kind and unit != kind.unit and UNIT_DISPLAY.get(kind.unit) != unit:
                r.error("value", f"{code} is recorded in UCUM {kind.unit}, not {unit}", "valueQuantity")
            values["unit"] = kind.unit if kind else unit
    elif integer is not None:
        values["value"] = Decimal(integer)
    elif text is not None:
        values["text"] = text
    elif concept is not None:
        values["text"] = concept.get("text") or next(
            (c.get("display") or c.get("code") for c in _codings(concept)), ""
        )
    elif code:
        r.error(
            "required", "a value (valueQuantity, valueString or valueCodeableConcept) is required", "value[x]"
        )
    if r.get("component"):
        r.error(
            "not-supported",
            "components are not stored: send each measurement (e.g. systolic 8480-6, diastolic 8462-4) "
            "as its own Observation",
            "component",
        )
    r.finish()
    return mapped, r.issues


def condition_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    mapped = Mapped("Condition", "condition", source_id=_source_id(resource))
    values = mapped.values
    coding = _coding(r.get("code"), ICD10)
    if coding is None:
        r.error("not-supported", f"the code needs an ICD-10 coding (system {ICD10})", "code")
    else:
        code = coding["code"].strip().upper()
        if not ICD10_PATTERN.match(code):
            r.error("value", f"{coding['code']!r} is not an ICD-10 code", "code.coding")
        values["icd10_code"] = code
        values["display"] = coding.get("display") or (r.resource.get("code") or {}).get("text") or ""
        if code not in icd10_codes() and not values["display"]:
            r.error("required", f"{code} is not on this node's ICD-10 list, so it needs a display", "code")
    status_coding = _coding(r.get("clinicalStatus"), CONDITION_CLINICAL)
    status = status_coding["code"] if status_coding else "active"
    if status not in CONDITION_STATUS_IN:
        r.error("value", f"unknown clinical status {status!r}", "clinicalStatus")
    values["clinical_status"] = CONDITION_STATUS_IN.get(status, "active")
    verification = _coding(r.get("verificationStatus"), CONDITION_VERIFICATION)
    if verification and verification["code"] in {"refuted", "entered-in-error"}:
        r.error("not-supported", f"a {verification['code']} condition is not recorded", "verificationStatus")
    r.get("category")
    mapped.refs["patient"] = r.reference(r.get("subject"), "subject", ("Patient",), required=True)
    encounter = r.reference(r.get("encounter"), "encounter", ("Encounter",), required=False)
    if encounter:
        mapped.refs["encounter"] = encounter
    onset = r.get("onsetDateTime")
    values["onset_date"] = None
    if onset:
        if len(onset) < 10:
            r.error("value", f"{onset!r} is not precise enough: give a full date", "onsetDateTime")
        else:
            values["onset_date"] = dt.date.fromisoformat(onset[:10])
    recorded = r.get("recordedDate")
    values["created_at"] = r.datetime(recorded, "recordedDate", required=False) if recorded else None
    r.finish()
    return mapped, r.issues


def _format_quantity(quantity: dict) -> str:
    value = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return f"{text} {unit}".strip()


def _duration_days(r: Reader, timing: dict, path: str) -> int | None:
    bounds = (timing.get("repeat") or {}).get("boundsDuration")
    if not bounds:
        return None
    unit = bounds.get("code") or bounds.get("unit")
    factor = DURATION_DAYS.get(unit) or {"day": 1, "days": 1, "week": 7, "weeks": 7}.get(str(unit))
    value = bounds.get("value")
    if factor is None or value is None or Decimal(value) != Decimal(value).to_integral_value():
        r.error("value", "a duration needs a whole number of days (d) or weeks (wk)", f"{path}.timing.repeat")
        return None
    return int(Decimal(value)) * factor


def _frequency(timing: dict) -> str:
    code = timing.get("code") or {}
    if code.get("text"):
        return code["text"]
    for coding in _codings(code):
        if coding.get("display") or coding.get("code"):
            return coding.get("display") or coding["code"]
    repeat = timing.get("repeat") or {}
    if repeat.get("frequency") and repeat.get("period") and repeat.get("periodUnit"):
        return f"{repeat['frequency']} times per {repeat['period']} {repeat['periodUnit']}"
    return ""


def medication_request_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    mapped = Mapped("MedicationRequest", "prescription", source_id=_source_id(resource))
    values = mapped.values
    status = r.get("status")
    if status not in MEDICATION_STATUSES_IN:
        r.error("not-supported", f"status must be active, completed or stopped, not {status!r}", "status")
    values["status"] = status
    r.get("intent")
    concept = r.get("medicationCodeableConcept")
    values["medication"] = ""
    if r.get("medicationReference"):
        r.error("not-supported", "give the medication as medicationCodeableConcept", "medicationReference")
    elif concept is not None:
        medication = concept.get("text") or next(
            (c.get("display") for c in _codings(concept) if c.get("display")), ""
        )
        if not medication:
            r.error(
                "required", "the medication needs a text or a coding display", "medicationCodeableConcept"
            )
        values["medication"] = medication
    else:
        r.error("required", "a medication (medicationCodeableConcept) is required", "medication[x]")
    mapped.refs["patient"] = r.reference(r.get("subject"), "subject", ("Patient",), required=True)
    encounter = r.reference(r.get("encounter"), "encounter", ("Encounter",), required=False)
    if encounter:
        mapped.refs["encounter"] = encounter
    requester = r.reference(r.get("requester"), "requester", ("Practitioner",), required=False)
    if requester:
        mapped.refs["practitioner"] = requester
    authored = r.get("authoredOn")
    values["created_at"] = r.datetime(authored, "authoredOn", required=False) if authored else None
    dosages = r.get("dosageInstruction") or []
    values.update(dose="", frequency="", duration_days=None)
    if dosages:
        dosage, path = dosages[0], "dosageInstruction[0]"
        if len(dosages) > 1:
            r.warn("only the first dosage instruction is stored", "dosageInstruction")
        timing = dosage.get("timing") or {}
        rates = dosage.get("doseAndRate") or []
        quantity = rates[0].get("doseQuantity") if rates else None
        text_ext = _extension(dosage, EXT_DOSE_TEXT)
        if quantity and quantity.get("value") is not None:
            values["dose"] = _format_quantity(quantity)
        elif text_ext:
            values["dose"] = text_ext.get("valueString", "")
        values["frequency"] = _frequency(timing)
        values["duration_days"] = _duration_days(r, timing, path)
        if not values["dose"] and not values["frequency"] and dosage.get("text"):
            values["dose"] = dosage["text"]
    r.finish()
    return mapped, r.issues


def _is_note(resource: dict) -> bool:
    concept = resource.get("type") or {}
    return any(c.get("system") == LOINC and c.get("code") in NOTE_TYPES for c in _codings(concept))


def document_reference_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    r = Reader(resource)
    note = _is_note(resource)
    mapped = Mapped("DocumentReference", "note" if note else "attachment", source_id=_source_id(resource))
    values = mapped.values
    status = r.get("status")
    if status != "current":
        r.error("not-supported", f"only current documents are stored, not {status!r}", "status")
    r.get("type")
    r.get("category")
    r.used.add("extension")
    _known_extensions(r, resource, {EXT_WATERMARK}, "extension")
    mapped.refs["patient"] = r.reference(r.get("subject"), "subject", ("Patient",), required=True)
    context = r.get("context") or {}
    encounters = context.get("encounter") or []
    if encounters:
        mapped.refs["encounter"] = r.reference(
            encounters[0], "context.encounter[0]", ("Encounter",), required=True
        )
    authors = r.get("author") or []
    if authors:
        author = r.reference(authors[0], "author[0]", ("Practitioner",), required=False)
        if author:
            mapped.refs["practitioner"] = author
    date = r.get("date")
    values["created_at"] = r.datetime(date, "date", required=False) if date else None
    r.get("description")
    contents = r.get("content") or []
    if len(contents) != 1:
        r.error("not-supported", "exactly one content attachment is stored per document", "content")
    attachment = (contents[0].get("attachment") or {}) if contents else {}
    data = attachment.get("data")
    if not data:
        r.error(
            "required",
            "the document's bytes are needed inline (attachment.data)",
            "content[0].attachment.data",
        )
        r.finish()
        return mapped, r.issues
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        r.error("value", "attachment.data is not base64", "content[0].attachment.data")
        r.finish()
        return mapped, r.issues
    if note:
        try:
            values["text"] = content.decode("utf-8")
        except UnicodeDecodeError:
            r.error("value", "a note must be UTF-8 text", "content[0].attachment.data")
        if not values.get("text", "").strip():
            r.error("required", "a note cannot be empty", "content[0].attachment.data")
    else:
        values["content"] = content
        values["media_type"] = attachment.get("contentType") or ""
        extension = ATTACHMENT_TYPES.get(values["media_type"])
        if extension is None:
            r.error(
                "not-supported",
                f"attachments are {', '.join(sorted(ATTACHMENT_TYPES))}, "
                f"not {values['media_type'] or 'untyped'}",
                "content[0].attachment.contentType",
            )
        else:
            try:
                sniff_upload(content, f"document{extension}")
            except UploadError as error:
                r.error("value", str(error), "content[0].attachment.data")
        values["title"] = attachment.get("title") or resource.get("description") or ""
        declared_hash = _extension(attachment, EXT_SHA256)
        if declared_hash:
            if hashlib.sha256(content).hexdigest() != declared_hash.get("valueString"):
                r.error(
                    "value", "the attachment's bytes do not match its SHA-256", "content[0].attachment.data"
                )
        if attachment.get("size") is not None and attachment["size"] != len(content):
            r.error("value", "attachment.size does not match the data", "content[0].attachment.size")
    r.finish()
    return mapped, r.issues


def practitioner_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    """Not stored: a Practitioner in a bundle names the user behind the references to it."""
    mapped = Mapped("Practitioner", "practitioner", source_id=_source_id(resource))
    username = ""
    for ident in resource.get("identifier") or []:
        if ident.get("system") == USERNAME and ident.get("value"):
            username = ident["value"]
    if not username:
        names = resource.get("name") or []
        if names:
            name = names[0]
            username = (
                name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""]).strip()
            )
    if not username:
        username = next((i.get("value") for i in resource.get("identifier") or [] if i.get("value")), "")
    mapped.values["username"] = username[:150]
    return mapped, []


def informational_from_fhir(resource: dict) -> tuple[Mapped, list[Issue]]:
    """Organization, Location, Provenance: describe a node and its ledger; a node keeps its own."""
    return Mapped(resource["resourceType"], "skip", source_id=_source_id(resource)), []


FROM_FHIR = {
    "Patient": patient_from_fhir,
    "Encounter": encounter_from_fhir,
    "Observation": observation_from_fhir,
    "Condition": condition_from_fhir,
    "MedicationRequest": medication_request_from_fhir,
    "DocumentReference": document_reference_from_fhir,
    "Practitioner": practitioner_from_fhir,
    "Organization": informational_from_fhir,
    "Location": informational_from_fhir,
    "Provenance": informational_from_fhir,
}


def from_fhir(resource: dict) -> tuple[Mapped | None, list[Issue]]:
    reader = FROM_FHIR.get(resource.get("resourceType"))
    if reader is None:
        return None, [
            Issue(
                "not-supported",
                f"{resource.get('resourceType')} resources are not stored by this node",
                "resourceType",
            )
        ]
    return reader(resource)
