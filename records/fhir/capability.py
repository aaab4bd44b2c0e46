"""The CapabilityStatement (GET /fhir/metadata), built from the same tables the server runs on."""

from django.utils import timezone

from .selectors import SEARCH_PARAMS
from .terms import PATIENT_NUMBER, instant

FHIR_VERSION = "4.0.1"
SOFTWARE = "SiliconHealth"

# resource type -> interactions this server really performs
INTERACTIONS = {
    "Patient": ["read", "search-type", "create", "update"],
    "Encounter": ["read", "search-type", "create", "update"],
    "Observation": ["read", "search-type", "create", "update"],
    "Condition": ["read", "search-type", "create", "update"],
    "MedicationRequest": ["read", "search-type", "create", "update"],
    "DocumentReference": ["read", "search-type", "create"],
    "Practitioner": ["read"],
    "Organization": ["read"],
    "Location": ["read"],
    "Provenance": ["search-type"],
}
DOCUMENTATION = {
    "Patient": f"The node-allocated patient number is the identifier {PATIENT_NUMBER}. Create is a "
    "conditional create by identifier: a patient already known by that identifier (or id) is matched, "
    "not duplicated.",
    "Observation": "Vital signs and labs with LOINC codes and UCUM units (valueQuantity), or a text "
    "result (valueString). Components are not stored.",
    "Condition": "Diagnoses coded in ICD-10 (http://hl7.org/fhir/sid/icd-10).",
    "DocumentReference": "Clinical notes (LOINC 11506-3, text/plain) and attachments (PNG, JPEG, TIFF, "
    "DICOM, PDF) with their watermark status as an extension. Content is sent inline (attachment.data).",
    "Provenance": "Search by target=Type/ID: one Provenance per ledger entry of the record, with the log "
    "index, leaf hash and the signed checkpoint (C2SP signed note) that covers it.",
    "Practitioner": "Users of this node, named by their user name.",
    "Organization": "This node (and the nodes it knows).",
}


def capability_statement(base_url: str) -> dict:
    resources = []
    for resource_type, interactions in INTERACTIONS.items():
        entry = {
            "type": resource_type,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": resource_type != "DocumentReference",
            "conditionalCreate": resource_type == "Patient",
        }
        if resource_type in DOCUMENTATION:
            entry["documentation"] = DOCUMENTATION[resource_type]
        params = SEARCH_PARAMS.get(resource_type)
        if params:
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, "documentation": p.documentation} for p in params
            ]
        if resource_type == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(timezone.now()),
        "kind": "instance",
        "software": {"name": SOFTWARE},
        "implementation": {"description": "SiliconHealth node FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Paging with _count (at most 200) and _offset; unknown search parameters "
                "are refused. POST to the base takes a transaction or collection Bundle, all or nothing. "
                "GET $export?_type=TYPE streams one resource type as NDJSON.",
                "security": {
                    "cors": False,
                    "description": "Authorization: Bearer <token> (manage.py users token USERNAME), or "
                    "the clinic UI's session. Roles as in the UI: a clerk reads and writes patients only; an "
                    "auditor reads and never writes.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }
