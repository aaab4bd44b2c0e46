"""FHIR R4 resources -> service arguments.

`from_fhir(resource)` gives a `Mapped` (service arguments plus the references still to resolve) and the
issues found; paths in issues are relative to the resource ("name[0].family"). The record <-> resource
table is in to_fhir.py.
"""

import base64
import binascii
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from ..codes import OBSERVATION_KINDS, QUALITATIVE_LABS, icd10_codes
from ..models import Encounter, Observation
from ..patient_number import is_valid_patient_number
from ..uploads import UploadError, sniff_upload
from .outcome import Issue
from .terms import (
    ALWAYS_ALLOWED,
    ATTACHMENT_TYPES,
    CLASS_TO_KIND,
    CONDITION_CLINICAL,
    CONDITION_STATUS_IN,
    CONDITION_VERIFICATION,
    DURATION_DAYS,
    ENCOUNTER_KIND,
    ENCOUNTER_STATUSES_IN,
    EXT_BIRTH_DATE_ESTIMATED,
    EXT_DOSE_TEXT,
    EXT_SHA256,
    EXT_WATERMARK,
    GENDERS,
    ICD10,
    ICD10_PATTERN,
    LOCAL_CODE,
    LOINC,
    LOINC_PATTERN,
    MEDICATION_STATUSES_IN,
    NOTE_TYPES,
    OBSERVATION_CATEGORY,
    OBSERVATION_STATUSES_IN,
    PATIENT_NUMBER,
    UCUM,
    UNIT_DISPLAY,
    USERNAME,
    as_uuid,
)


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
        self.used: set[str] = set(ALWAYS_ALLOWED)

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
