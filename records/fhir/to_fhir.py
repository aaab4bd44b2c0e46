"""Records -> FHIR R4 resources.

`to_fhir(obj, ctx)` gives one resource as a dict (Decimals kept as Decimals; see jsonio).


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
from dataclasses import dataclass, field
from decimal import Decimal

from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from .terms import (
    ACT_CODE,
    CATEGORY_DISPLAY,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    DATA_OPERATION,
    DOCUMENT_CATEGORY,
    DOSE_PATTERN,
    ENCOUNTER_CLASS,
    ENCOUNTER_KIND,
    EXT_BIRTH_DATE_ESTIMATED,
    EXT_CHECKPOINT_SIZE,
    EXT_DOSE_TEXT,
    EXT_LEAF_HASH,
    EXT_LEDGER_INDEX,
    EXT_LEDGER_ORIGIN,
    EXT_SHA256,
    EXT_WATERMARK,
    ICD10,
    IDENTIFIER_TYPE,
    LOCAL_CODE,
    LOINC,
    NODE_ID,
    NOTE_MEDIA_TYPE,
    NOTE_TYPE,
    NOTE_TYPES,
    OBSERVATION_CATEGORY,
    ORGANIZATION_TYPE,
    PATIENT_NUMBER,
    PROVENANCE_AGENT,
    SIGNATURE_TYPE,
    UCUM,
    UNIT_DISPLAY,
    USERNAME,
    derived_id,
    english,
    instant,
    location_id,
    meta,
    organization_id,
    plain_decimal,
    practitioner_id,
    reference,
)


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
