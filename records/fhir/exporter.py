"""Export: one patient's record ($everything), or the whole node as one collection Bundle or as NDJSON
files, one per resource type (the FHIR Bulk Data layout). Rows are read with iterator() in chunks and
written as they come, so memory stays bounded whatever the size of the node. Every resource is
validated with fhir.resources on its way out.
"""

import bisect
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.utils import timezone

from ledger.models import Checkpoint, Entry
from ledger.selectors import self_node

from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from ..selectors import patient_group_ids
from . import jsonio
from .terms import instant
from .to_fhir import (
    RESOURCE_TYPE,
    TO_FHIR,
    ExportContext,
    location_to_fhir,
    organization_to_fhir,
    practitioner_to_fhir,
    provenance_to_fhir,
)
from .validation import check_output

CHUNK = 2000
# Export order: what others refer to first. Notes and attachments are both DocumentReferences.
CLINICAL_MODELS = [Encounter, Observation, Condition, MedicationRequest, ClinicalNote, Attachment]
RECORD_MODELS = [Patient, *CLINICAL_MODELS]
NDJSON_TYPES = [
    "Organization",
    "Location",
    "Practitioner",
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "DocumentReference",
    "Provenance",
]
PRACTITIONER_FIELDS = {
    Encounter: "practitioner",
    MedicationRequest: "prescriber",
    ClinicalNote: "author",
    Attachment: "uploaded_by",
}


def export_context(*, base_url: str = "", embed_attachments: bool = True) -> ExportContext:
    from accounts.models import User

    names = {
        username: f"{first} {last}".strip()
        for username, first, last in User.objects.values_list("username", "first_name", "last_name")
        if (first or last)
    }
    return ExportContext(base_url=base_url, embed_attachments=embed_attachments, user_names=names)


def _checked(resource: dict, validate: bool) -> dict:
    return check_output(resource) if validate else resource


def node_resources() -> list[dict]:
    """Organization and Location of this node."""
    node = self_node()
    return [organization_to_fhir(node), location_to_fhir(node)]


def practitioners(usernames: Iterable[str], ctx: ExportContext) -> list[dict]:
    return [
        practitioner_to_fhir(name, ctx.user_names.get(name, "")) for name in sorted(set(usernames)) if name
    ]


def _rows(queryset) -> Iterator:
    return queryset.order_by("pk").iterator(chunk_size=CHUNK)


def _usernames(filters: dict | None = None) -> set[str]:
    names: set[str] = set()
    for model, field_name in PRACTITIONER_FIELDS.items():
        queryset = model.objects.filter(**(filters or {}))
        names.update(queryset.order_by().values_list(field_name, flat=True).distinct())
    return names


def record_resources(
    model, ctx: ExportContext, *, validate: bool = True, filters: dict | None = None
) -> Iterator[dict]:
    convert = TO_FHIR[model]
    for row in _rows(model.objects.filter(**(filters or {}))):
        yield _checked(convert(row, ctx), validate)


def provenance_resources(model, *, validate: bool = True, filters: dict | None = None) -> Iterator[dict]:
    """A Provenance for each record's latest ledger entry, with the first signed checkpoint covering it."""
    checkpoints: dict[str, tuple[list[int], list[Checkpoint]]] = {}
    for checkpoint in Checkpoint.objects.order_by("origin", "size"):
        sizes, rows = checkpoints.setdefault(checkpoint.origin, ([], []))
        sizes.append(checkpoint.size)
        rows.append(checkpoint)
    object_type = model._meta.object_name
    resource_type = RESOURCE_TYPE[model]
    rows = model.objects.filter(**(filters or {})).order_by("pk").values_list("pk", "version")
    iterator = rows.iterator(chunk_size=CHUNK)
    while True:
        chunk = dict(itertools.islice(iterator, CHUNK))
        if not chunk:
            return
        latest: dict = {}
        for entry in Entry.objects.filter(object_type=object_type, object_id__in=list(chunk)).defer(
            "payload"
        ):
            known = latest.get(entry.object_id)
            # The version every node shows: greatest (hlc, origin, index), ledger.selectors.LATEST_FIRST.
            rank = (entry.hlc, entry.origin, entry.index)
            if known is None or rank > (known.hlc, known.origin, known.index):
                latest[entry.object_id] = entry
        for object_id, version in chunk.items():
            entry = latest.get(object_id)
            if entry is None:
                continue
            sizes, signed = checkpoints.get(entry.origin, ([], []))
            position = bisect.bisect_right(sizes, entry.index)
            checkpoint = signed[position] if position < len(signed) else None
            yield _checked(provenance_to_fhir(entry, resource_type, version, checkpoint), validate)


def node_export(
    ctx: ExportContext, *, validate: bool = True, provenance: bool = False
) -> Iterator[tuple[str, dict]]:
    """(resource type, resource) for everything on this node, type by type."""
    for resource in node_resources():
        yield resource["resourceType"], _checked(resource, validate)
    for resource in practitioners(_usernames(), ctx):
        yield "Practitioner", _checked(resource, validate)
    for model in RECORD_MODELS:
        for resource in record_resources(model, ctx, validate=validate):
            yield RESOURCE_TYPE[model], resource
    if provenance:
        for model in RECORD_MODELS:
            for resource in provenance_resources(model, validate=validate):
                yield "Provenance", resource


def patient_export(
    patient: Patient,
    ctx: ExportContext,
    *,
    validate: bool = True,
    provenance: bool = False,
    clinical: bool = True,
) -> Iterator[tuple[str, dict]]:
    """Everything about one patient (and the records of patients merged into them)."""
    ids = patient_group_ids(patient)
    for resource in node_resources():
        yield resource["resourceType"], _checked(resource, validate)
    if clinical:
        for resource in practitioners(_usernames({"patient__in": ids}), ctx):
            yield "Practitioner", _checked(resource, validate)
    models = RECORD_MODELS if clinical else [Patient]
    for model in models:
        filters = {"pk__in": ids} if model is Patient else {"patient__in": ids}
        for resource in record_resources(model, ctx, validate=validate, filters=filters):
            yield RESOURCE_TYPE[model], resource
    if provenance:
        for model in models:
            filters = {"pk__in": ids} if model is Patient else {"patient__in": ids}
            for resource in provenance_resources(model, validate=validate, filters=filters):
                yield "Provenance", resource


def full_url(resource: dict, base_url: str = "") -> str:
    if base_url:
        return f"{base_url.rstrip('/')}/{resource['resourceType']}/{resource['id']}"
    return f"urn:uuid:{resource['id']}"


def bundle_chunks(
    resources: Iterable[tuple[str, dict]],
    *,
    bundle_type: str = "collection",
    base_url: str = "",
    extra: dict | None = None,
    search_mode: bool = False,
) -> Iterator[str]:
    """A Bundle as JSON text, piece by piece: it never exists whole in memory."""
    head = {"resourceType": "Bundle", "type": bundle_type, "timestamp": instant(timezone.now())}
    head.update(extra or {})
    yield jsonio.dumps(head)[:-1] + ',"entry":['
    for position, (_resource_type, resource) in enumerate(resources):
        entry = {"fullUrl": full_url(resource, base_url), "resource": resource}
        if search_mode:
            entry["search"] = {"mode": "match" if resource["resourceType"] == "Patient" else "include"}
        yield ("," if position else "") + jsonio.dumps(entry)
    yield "]}"


def bundle_dict(
    resources: Iterable[tuple[str, dict]], *, bundle_type: str = "collection", base_url: str = ""
) -> dict:
    """The same Bundle as a dict, for small exports (one patient) and tests."""
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "timestamp": instant(timezone.now()),
        "entry": [
            {"fullUrl": full_url(resource, base_url), "resource": resource} for _, resource in resources
        ],
    }


def write_bundle(resources: Iterable[tuple[str, dict]], out, **options) -> int:
    count = 0

    def counted():
        nonlocal count
        for item in resources:
            count += 1
            yield item

    for chunk in bundle_chunks(counted(), **options):
        out.write(chunk)
    out.write("\n")
    return count


def write_ndjson(resources: Iterable[tuple[str, dict]], directory: Path) -> dict[str, int]:
    """One file per resource type, one resource per line; files are opened as types appear."""
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    handles: dict = {}
    try:
        for resource_type, resource in resources:
            handle = handles.get(resource_type)
            if handle is None:
                handle = handles[resource_type] = (directory / f"{resource_type}.ndjson").open(
                    "w", encoding="utf-8"
                )
            handle.write(jsonio.dumps(resource))
            handle.write("\n")
            counts[resource_type] = counts.get(resource_type, 0) + 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts
