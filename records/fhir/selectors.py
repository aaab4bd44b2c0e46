"""FHIR reads with the UI's role rules: a clerk or an admin sees patients (and the node and its
practitioners) but no clinical resource; clinicians, nurses and auditors see everything they can in
the chart. Search parameters are declared once in SEARCH_PARAMS, which the CapabilityStatement and
the OpenAPI description are generated from, so they say what the server really does.
"""

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Capability, has_capability
from ledger.models import Checkpoint, Entry, Node

from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from ..selectors import name_contains
from ..text import fold
from .exporter import export_context, practitioners
from .outcome import FhirError, Issue
from .terms import (
    LOCAL_CODE,
    LOINC,
    PATIENT_NUMBER,
    as_uuid,
    identifier_patient_id,
    location_id,
    organization_id,
)
from .to_fhir import TO_FHIR, ExportContext, location_to_fhir, organization_to_fhir, provenance_to_fhir
from .validation import check_output

DEFAULT_COUNT = 20
MAX_COUNT = 200


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # FHIR search parameter type: token, string, date, reference
    documentation: str


SEARCH_PARAMS: dict[str, list[Param]] = {
    "Patient": [
        Param("_id", "token", "logical id"),
        Param("identifier", "token", f"system|value; the patient number is {PATIENT_NUMBER}|NUMBER"),
        Param("name", "string", "any part of the given or family name (case and accents ignored)"),
        Param("family", "string", "family name starts with"),
        Param("given", "string", "given name starts with"),
        Param("birthdate", "date", "birth date, with prefixes eq, ne, gt, ge, lt, le"),
        Param("gender", "token", "male | female | other | unknown"),
    ],
    "Encounter": [
        Param("_id", "token", "logical id"),
        Param("patient", "reference", "Patient/ID or ID"),
        Param("subject", "reference", "Patient/ID"),
        Param("date", "date", "start of the encounter"),
    ],
    "Observation": [
        Param("_id", "token", "logical id"),
        Param("patient", "reference", "Patient/ID or ID"),
        Param("subject", "reference", "Patient/ID"),
        Param("encounter", "reference", "Encounter/ID"),
        Param("date", "date", "effective date and time"),
        Param("code", "token", f"{LOINC}|CODE or CODE"),
        Param("category", "token", "vital-signs | laboratory"),
    ],
    "Condition": [
        Param("_id", "token", "logical id"),
        Param("patient", "reference", "Patient/ID or ID"),
        Param("subject", "reference", "Patient/ID"),
        Param("encounter", "reference", "Encounter/ID"),
        Param("onset-date", "date", "onset date"),
        Param("recorded-date", "date", "date recorded"),
        Param("code", "token", "http://hl7.org/fhir/sid/icd-10|CODE or CODE"),
        Param("clinical-status", "token", "active | resolved"),
    ],
    "MedicationRequest": [
        Param("_id", "token", "logical id"),
        Param("patient", "reference", "Patient/ID or ID"),
        Param("subject", "reference", "Patient/ID"),
        Param("encounter", "reference", "Encounter/ID"),
        Param("authoredon", "date", "date prescribed"),
        Param("status", "token", "active | completed | stopped"),
    ],
    "DocumentReference": [
        Param("_id", "token", "logical id"),
        Param("patient", "reference", "Patient/ID or ID"),
        Param("subject", "reference", "Patient/ID"),
        Param("encounter", "reference", "Encounter/ID"),
        Param("date", "date", "date the document was recorded"),
    ],
    "Provenance": [Param("target", "reference", "Type/ID of a record: one Provenance per ledger entry")],
}
CONTROL_PARAMS = {"_count", "_offset", "_format", "_pretty"}

SEARCH_MODELS = {
    "Patient": [Patient],
    "Encounter": [Encounter],
    "Observation": [Observation],
    "Condition": [Condition],
    "MedicationRequest": [MedicationRequest],
    "DocumentReference": [ClinicalNote, Attachment],
}
ORDERING = {
    Patient: ("family_name", "given_name", "pk"),
    Encounter: ("-started_at", "pk"),
    Observation: ("-effective_at", "pk"),
    Condition: ("-created_at", "pk"),
    MedicationRequest: ("-created_at", "pk"),
    ClinicalNote: ("-created_at", "pk"),
    Attachment: ("-created_at", "pk"),
}
DATE_FIELDS = {
    ("Encounter", "date"): "started_at",
    ("Observation", "date"): "effective_at",
    ("Condition", "onset-date"): "onset_date",
    ("Condition", "recorded-date"): "created_at",
    ("MedicationRequest", "authoredon"): "created_at",
    ("DocumentReference", "date"): "created_at",
    ("Patient", "birthdate"): "birth_date",
}
PATIENT_READ_TYPES = {"Patient", "Practitioner", "Organization", "Location"}


def require_read(user, resource_type: str) -> None:
    capability = Capability.VIEW_PATIENTS if resource_type in PATIENT_READ_TYPES else Capability.VIEW_CLINICAL
    if not has_capability(user, capability):
        raise PermissionDenied(f"your role may not read {resource_type} resources")


def _not_found(resource_type: str, object_id) -> FhirError:
    return FhirError([Issue("not-found", f"{resource_type}/{object_id} is not on this node")], status=404)


def read(*, user, resource_type: str, object_id: str, ctx: ExportContext | None = None) -> dict:
    require_read(user, resource_type)
    ctx = ctx or export_context(embed_attachments=False)
    if resource_type == "Practitioner":
        for resource in practitioners(_all_usernames(), ctx):
            if resource["id"] == object_id:
                return check_output(resource)
        raise _not_found(resource_type, object_id)
    if resource_type in {"Organization", "Location"}:
        for node in Node.objects.all():
            wanted = (
                organization_id(node.node_id)
                if resource_type == "Organization"
                else location_id(node.node_id)
            )
            if wanted == object_id:
                convert = organization_to_fhir if resource_type == "Organization" else location_to_fhir
                return check_output(convert(node))
        raise _not_found(resource_type, object_id)
    models = SEARCH_MODELS.get(resource_type)
    if models is None:
        raise FhirError([Issue("not-supported", f"{resource_type} is not served here")], status=404)
    pk = as_uuid(object_id)
    if pk is None:
        raise _not_found(resource_type, object_id)
    for model in models:
        row = model.objects.filter(pk=pk).first()
        if row is not None:
            return check_output(TO_FHIR[model](row, ctx))
    raise _not_found(resource_type, object_id)


def record_for(*, resource_type: str, object_id: str):
    """The row behind a resource (no role check: for writers that checked already)."""
    pk = as_uuid(object_id)
    for model in SEARCH_MODELS.get(resource_type, []):
        row = model.objects.filter(pk=pk).first() if pk else None
        if row is not None:
            return row
    raise ObjectDoesNotExist(f"{resource_type}/{object_id}")


def _all_usernames() -> set[str]:
    from accounts.models import User

    from .exporter import _usernames

    return set(User.objects.values_list("username", flat=True)) | _usernames()


def get_patient(*, user, object_id: str) -> Patient:
    require_read(user, "Patient")
    pk = as_uuid(object_id)
    patient = Patient.objects.filter(pk=pk).first() if pk else None
    if patient is None:
        raise _not_found("Patient", object_id)
    return patient


# ---------------------------------------------------------------------------------------------------
# Search


@dataclass
class Page:
    total: int
    offset: int
    count: int
    resources: list[dict]


def _bad(message: str, name: str) -> FhirError:
    return FhirError([Issue("value", message, f"search parameter {name}")], status=400)


def _int(params, name: str, default: int, maximum: int | None = None) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise _bad(f"{name} must be a whole number", name)
    value = int(text)
    return min(value, maximum) if maximum is not None else value


_DATE = re.compile(r"^(eq|ne|gt|ge|lt|le|sa|eb|ap)?(\d{4})(-\d{2})?(-\d{2})?(T.*)?$")


def _date_range(text: str, name: str) -> tuple[str, dt.datetime, dt.datetime]:
    """'ge2024-05' -> ('ge', start, end): the value's range as aware datetimes, end exclusive."""
    match = _DATE.match(text)
    if not match:
        raise _bad(f"{text!r} is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a zone)", name)
    prefix = match.group(1) or "eq"
    if prefix in {"sa", "eb", "ap"}:
        raise _bad(f"the {prefix} prefix is not supported", name)
    value = text[len(match.group(1) or "") :]
    try:
        if match.group(5):
            start = dt.datetime.fromisoformat(value)
            if start.tzinfo is None:
                raise _bad("a dateTime needs a time zone", name)
            return prefix, start, start + dt.timedelta(seconds=1)
        year = int(match.group(2))
        if match.group(4):
            day = dt.date.fromisoformat(value)
            first, last = day, day + dt.timedelta(days=1)
        elif match.group(3):
            month = int(match.group(3)[1:])
            first = dt.date(year, month, 1)
            last = dt.date(year + month // 12, month % 12 + 1, 1)
        else:
            first, last = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    except ValueError:
        raise _bad(f"{text!r} is not a valid date", name) from None
    midnight = dt.time()
    return (
        prefix,
        timezone.make_aware(dt.datetime.combine(first, midnight)),
        timezone.make_aware(dt.datetime.combine(last, midnight)),
    )


def _date_filter(field_name: str, text: str, name: str, *, is_date: bool) -> Q:
    prefix, start, end = _date_range(text, name)
    if is_date:
        start, end = timezone.localtime(start).date(), timezone.localtime(end).date()
        if end == start:
            end = start + dt.timedelta(days=1)
    within = Q(**{f"{field_name}__gte": start, f"{field_name}__lt": end})
    return {
        "eq": within,
        "ne": ~within,
        "gt": Q(**{f"{field_name}__gte": end}),
        "ge": Q(**{f"{field_name}__gte": start}),
        "lt": Q(**{f"{field_name}__lt": start}),
        "le": Q(**{f"{field_name}__lt": end}),
    }[prefix]


def _reference_ids(text: str, name: str, resource_type: str) -> list[uuid.UUID]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        if "/" in part:
            kind, _, part = part.rpartition("/")
            if kind.split("/")[-1] != resource_type:
                raise _bad(f"{name} refers to a {resource_type}", name)
        pk = as_uuid(part)
        if pk is None:
            raise _bad(f"{part!r} is not an id of this node (ids are UUIDs)", name)
        ids.append(pk)
    return ids


def _tokens(text: str) -> list[tuple[str | None, str]]:
    tokens = []
    for part in text.split(","):
        system, bar, code = part.partition("|")
        tokens.append((system, code) if bar else (None, system))
    return tokens


def _observation_codes(text: str, name: str) -> list[str]:
    codes = []
    for system, code in _tokens(text):
        if system in {None, ""}:
            codes += [code, f"sh:{code}"]
        elif system == LOINC:
            codes.append(code)
        elif system == LOCAL_CODE:
            codes.append(f"sh:{code}")
        else:
            codes.append("\x00no-such-code")  # another system: nothing here is coded in it
    return codes


def _patient_identifier_filter(text: str) -> Q:
    condition = Q(pk__in=[])
    for system, value in _tokens(text):
        if system in {None, "", PATIENT_NUMBER}:
            condition |= Q(patient_number=value.strip().upper())
        if system not in {None, "", PATIENT_NUMBER}:
            condition |= Q(pk=identifier_patient_id(system, value))
    return condition


def _filter(resource_type: str, model, name: str, values: list[str]) -> Q:
    condition = Q()
    for text in values:
        if (resource_type, name) in DATE_FIELDS:
            field_name = DATE_FIELDS[resource_type, name]
            is_date = field_name in {"onset_date", "birth_date"}
            condition &= _date_filter(field_name, text, name, is_date=is_date)
        elif name == "_id":
            condition &= Q(pk__in=[pk for pk in (as_uuid(v) for v in text.split(",")) if pk])
        elif name in {"patient", "subject"}:
            condition &= Q(patient__in=_reference_ids(text, name, "Patient"))
        elif name == "encounter":
            condition &= Q(encounter__in=_reference_ids(text, name, "Encounter"))
        elif name == "identifier":
            condition &= _patient_identifier_filter(text)
        elif name == "name":
            for token in fold(text).split():
                condition &= Q(name_contains(token))
        elif name == "family":
            condition &= Q(family_name__istartswith=text.strip())
        elif name == "given":
            condition &= Q(given_name__istartswith=text.strip())
        elif name == "gender":
            condition &= Q(sex__in=[code for _, code in _tokens(text)])
        elif name == "code" and model is Observation:
            condition &= Q(code__in=_observation_codes(text, name))
        elif name == "code" and model is Condition:
            condition &= Q(icd10_code__in=[code.upper() for _, code in _tokens(text)])
        elif name == "category":
            condition &= Q(category__in=[code for _, code in _tokens(text)])
        elif name == "clinical-status":
            condition &= Q(clinical_status__in=[code for _, code in _tokens(text)])
        elif name == "status":
            condition &= Q(status__in=[code for _, code in _tokens(text)])
        else:
            raise _bad(f"{name} is not a search parameter of {resource_type}", name)
    return condition


def search(*, user, resource_type: str, params, ctx: ExportContext | None = None) -> Page:
    """params: a QueryDict (or a dict of lists). Unknown parameters are refused, not ignored, so a
    client never mistakes an unfiltered page for a filtered one."""
    if resource_type not in SEARCH_PARAMS:
        raise FhirError([Issue("not-supported", f"searching {resource_type} is not supported")], status=404)
    require_read(user, resource_type)
    getlist = params.getlist if hasattr(params, "getlist") else (lambda key: params.get(key, []))
    single = {key: (getlist(key) or [None])[-1] for key in params}
    known = {param.name for param in SEARCH_PARAMS[resource_type]}
    unknown = sorted(set(params) - known - CONTROL_PARAMS)
    if unknown:
        raise FhirError(
            [
                Issue("not-supported", f"unknown search parameter {name} for {resource_type}", name)
                for name in unknown
            ],
            status=400,
        )
    count = _int(single, "_count", DEFAULT_COUNT, MAX_COUNT)
    offset = _int(single, "_offset", 0)
    if resource_type == "Provenance":
        return _provenance_page(user, getlist("target"), offset, count)
    ctx = ctx or export_context(embed_attachments=False)
    querysets = []
    for model in SEARCH_MODELS[resource_type]:
        condition = Q()
        for name in params:
            if name not in CONTROL_PARAMS:
                condition &= _filter(resource_type, model, name, getlist(name))
        querysets.append(model.objects.filter(condition).order_by(*ORDERING[model]))
    totals = [queryset.count() for queryset in querysets]
    resources = []
    skip, wanted = offset, count
    for queryset, total in zip(querysets, totals, strict=True):
        if skip >= total:
            skip -= total
            continue
        for row in queryset[skip : skip + wanted]:
            resources.append(check_output(TO_FHIR[type(row)](row, ctx)))
        wanted = count - len(resources)
        skip = 0
        if wanted <= 0:
            break
    return Page(sum(totals), offset, count, resources)


def _provenance_page(user, targets: list[str], offset: int, count: int) -> Page:
    if len(targets) != 1 or "/" not in targets[0]:
        raise _bad("give one target=Type/ID", "target")
    resource_type, _, object_id = targets[0].rpartition("/")
    resource_type = resource_type.split("/")[-1]
    require_read(user, resource_type)
    row = record_for(resource_type=resource_type, object_id=object_id)
    entries = list(Entry.objects.filter(object_id=row.pk).order_by("hlc", "origin", "index"))
    checkpoints = {
        origin: list(Checkpoint.objects.filter(origin=origin).order_by("size"))
        for origin in {entry.origin for entry in entries}
    }
    resources = []
    for version, entry in enumerate(entries, start=1):
        covering = next((c for c in checkpoints[entry.origin] if c.size > entry.index), None)
        resources.append(check_output(provenance_to_fhir(entry, resource_type, version, covering)))
    return Page(len(resources), offset, count, resources[offset : offset + count])
