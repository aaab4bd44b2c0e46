"""Identifier and code systems, extension URLs, and the small helpers both FHIR directions use."""

import datetime as dt
import re
import uuid
from decimal import Decimal

from django.utils import translation

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
ALWAYS_ALLOWED = {"resourceType", "id", "meta", "text", "language", "implicitRules"}

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
