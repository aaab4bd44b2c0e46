"""Reference and identifier parsing, and batched lookups of rows already on this node, for the resolver."""

import uuid
from urllib.parse import unquote

from ..models import Patient
from .terms import PATIENT_NUMBER, as_uuid, identifier_patient_id

CHUNK = 500


def identifier_query(text: str) -> tuple[str, str] | None:
    """'identifier=system|value' (as in ifNoneExist or a conditional reference) -> (system, value)."""
    text = text.split("?", 1)[-1]
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if name == "identifier" and value:
            system, bar, code = unquote(value).partition("|")
            return (system, code) if bar else ("", system)
    return None


def ref_type_id(text: str) -> str | None:
    """'Patient/123', 'http://host/fhir/Patient/123/_history/2' -> 'Patient/123'."""
    parts = [part for part in text.split("?", 1)[0].split("/") if part]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha():
        return f"{parts[-2]}/{parts[-1]}"
    return None


def urn_uuid(full_url: str) -> uuid.UUID | None:
    if full_url.startswith("urn:uuid:"):
        return as_uuid(full_url[len("urn:uuid:") :])
    return None


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fetch_by(model, field_name: str, values: set) -> dict:
    found = {}
    for chunk in chunks([v for v in values if v is not None]):
        for row in model.objects.filter(**{f"{field_name}__in": chunk}):
            found[getattr(row, field_name)] = row
    return found


def patient_by_identifier(system: str, value: str) -> Patient | None:
    if system == PATIENT_NUMBER or not system:
        row = Patient.objects.filter(patient_number=value.strip().upper()).first()
        if row is not None or system:
            return row
    return Patient.objects.filter(pk=identifier_patient_id(system, value)).first()
