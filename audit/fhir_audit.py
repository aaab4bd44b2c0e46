"""The access log as FHIR R4 AuditEvent resources, in a Bundle of type "collection".

Codes follow the FHIR R4 AuditEvent value sets (audit-event-type, DICOM DCM for patient-record and
export events, restful-interaction subtypes, audit-entity-type, object-role, network-type). Each
event carries its chain hashes as entity details, so an exported log can be re-chained outside.
Every resource is validated with fhir.resources before it leaves (records.fhir.validation).
"""

import json
from collections.abc import Iterable, Iterator

from records.fhir import jsonio
from records.fhir.validation import check_output

from .models import AccessEvent

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
USER_SYSTEM = "urn:siliconhealth:user"
NODE_SYSTEM = "urn:siliconhealth:node"
OBJECT_SYSTEM = "urn:siliconhealth:object"

# action -> (type coding, FHIR action code: R read, E execute/query)
_TYPES = {
    AccessEvent.Action.CHART_READ: ({"system": DCM, "code": "110110", "display": "Patient Record"}, "R"),
    AccessEvent.Action.IMAGE_READ: ({"system": DCM, "code": "110110", "display": "Patient Record"}, "R"),
    AccessEvent.Action.EXPORT: ({"system": DCM, "code": "110106", "display": "Export"}, "R"),
    AccessEvent.Action.PROOF_DOWNLOAD: ({"system": DCM, "code": "110106", "display": "Export"}, "R"),
    AccessEvent.Action.SEARCH: ({"system": DCM, "code": "110112", "display": "Query"}, "E"),
    AccessEvent.Action.FHIR_READ: (
        {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "R",
    ),
}
_INTERACTIONS = {"read": "read", "search-type": "search-type", "everything": "operation"}


def _patient_entity(patient_id: str) -> dict:
    return {
        "what": {"reference": f"Patient/{patient_id}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def audit_event(event: AccessEvent, *, node_id: str) -> dict:
    """One access event as an AuditEvent (a dict, validated)."""
    type_coding, action = _TYPES[event.action]
    if event.action == AccessEvent.Action.SEARCH or (
        event.action == AccessEvent.Action.FHIR_READ and event.detail.get("interaction") == "search-type"
    ):
        action = "E"
    agent = {
        "who": {"identifier": {"system": USER_SYSTEM, "value": event.username or "unknown"}},
        "requestor": True,
    }
    if event.username:
        agent["who"]["display"] = event.username
    if event.role:
        agent["role"] = [{"text": event.role}]
    if event.remote_addr:
        agent["network"] = {"address": event.remote_addr, "type": "2"}  # 2 = IP address
    entities = []
    if event.patient_id:
        entities.append(_patient_entity(str(event.patient_id)))
    for patient_id in event.detail.get("patients", []) if isinstance(event.detail, dict) else []:
        entities.append(_patient_entity(str(patient_id)))
    details = [
        {"type": "hash", "valueString": event.hash},
        {"type": "prev_hash", "valueString": event.prev_hash},
        {"type": "action", "valueString": event.action},
    ]
    if event.detail:
        details.append({"type": "detail", "valueString": json.dumps(event.detail, sort_keys=True)})
    system_object = {
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "detail": details,
    }
    if event.object_type or event.object_id:
        system_object["what"] = {
            "identifier": {
                "system": "urn:siliconhealth:object",
                "value": f"{event.object_type}/{event.object_id}",
            }
        }
    entities.append(system_object)
    resource = {
        "resourceType": "AuditEvent",
        "id": f"access-{event.pk}",
        "type": type_coding,
        "action": action,
        "recorded": event.at.isoformat(timespec="milliseconds"),
        "outcome": "0",
        "agent": [agent],
        "source": {
            "site": node_id,
            "observer": {"identifier": {"system": NODE_SYSTEM, "value": node_id}, "display": node_id},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    interaction = _INTERACTIONS.get(
        event.detail.get("interaction", "") if isinstance(event.detail, dict) else ""
    )
    if event.action == AccessEvent.Action.FHIR_READ and interaction:
        resource["subtype"] = [{"system": RESTFUL, "code": interaction}]
    return check_output(resource)


def bundle_chunks(events: Iterable[AccessEvent], *, node_id: str) -> Iterator[str]:
    """A collection Bundle of AuditEvents, as text chunks (streamed: the log can be long)."""
    yield '{"resourceType":"Bundle","type":"collection","entry":['
    first = True
    for event in events:
        resource = audit_event(event, node_id=node_id)
        prefix = "" if first else ","
        first = False
        yield prefix + jsonio.dumps(
            {"fullUrl": f"urn:siliconhealth:audit:{resource['id']}", "resource": resource}
        )
    yield "]}\n"
