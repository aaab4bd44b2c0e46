"""Every write to clinical records. Each function validates, writes the rows and appends one ledger
entry per changed object in the same transaction, so no record change can bypass the ledger.
"""

import datetime as dt
import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from ledger import services as ledger_services
from ledger.registry import record_edited
from ledger.selectors import self_node_id, self_node_prefix

from .canonical import object_type, record_payload_text
from .codes import OBSERVATION_KINDS, QUALITATIVE_LABS, icd10_codes
from .models import (
    Attachment,
    ClinicalNote,
    Condition,
    DuplicateDismissal,
    Encounter,
    MedicationRequest,
    Observation,
    Patient,
    PatientNumberSequence,
)
from .patient_number import format_patient_number, is_valid_patient_number
from .text import fold
from .validation import clean_fields

IMAGE_MEDIA_TYPES = {"image/png", "image/tiff", "application/dicom", "image/jpeg"}


def _ledger(obj, *, kind: str, author: str, batch: list | None = None) -> None:
    pending = ledger_services.PendingEntry(
        kind, object_type(obj), obj.pk, None, author, payload_text=record_payload_text(obj)
    )
    if batch is None:
        ledger_services.append_many([pending])
        if kind != "create":  # an edit may settle or change a sync conflict on this record
            record_edited(obj.pk)
    else:
        batch.append(pending)


# Set by _stamp_new from the server's own clock and identity, never from input.
_STAMPED_FIELDS = ("origin", "created_at", "updated_at", "version")


def _validate(obj, *, trusted: tuple[str, ...] = ()) -> None:
    # Field validation only: foreign keys were just read by the caller and uniqueness is the
    # database's job, so full_clean's extra queries per row would be pure cost; so would re-checking
    # the `trusted` fields this module has just set itself (from its clock, identity or code tables).
    clean_fields(obj, _not_validated(type(obj), trusted))


@cache
def _not_validated(model: type, trusted: tuple[str, ...]) -> frozenset[str]:
    # Worked out once per model (clean_fields caches its plan per model and set).
    return frozenset((*(f.name for f in model._meta.concrete_fields if f.is_relation), *trusted))


def _stamp_new(obj, created_at: dt.datetime | None = None, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    if created_at is not None and created_at > now + dt.timedelta(minutes=5):
        raise ValidationError({"created_at": "A record cannot be created in the future."})
    obj.origin = self_node_id()
    obj.created_at = created_at or now
    obj.updated_at = now
    obj.version = 1


def prepare_new_row(
    obj,
    *,
    created_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
    trusted: tuple[str, ...] = (),
    imported_id: bool = False,
) -> None:
    """Stamp a new row with this node's identity and time and check it, before it is inserted (one row
    here, or many at once by the bulk demo seeding)."""
    _stamp_new(obj, created_at, now)
    # A generated id is a fresh UUID; an imported one is checked like any input.
    stamped = _STAMPED_FIELDS if imported_id else ("id", *_STAMPED_FIELDS)
    _validate(obj, trusted=(*stamped, *trusted) if trusted else stamped)


def _save_new(
    obj,
    *,
    author: str,
    batch: list | None = None,
    created_at: dt.datetime | None = None,
    record_id=None,
    now: dt.datetime | None = None,
    trusted: tuple[str, ...] = (),
):
    """Insert a new record row and ledger it. `record_id` and `created_at` keep an imported record's
    identity and time (FHIR import); otherwise the row keeps its fresh UUID and gets now() (or `now`,
    one instant for all the rows of one write). `trusted`: fields the caller set from its code tables."""
    if record_id is not None:
        obj.id = record_id
    prepare_new_row(obj, created_at=created_at, now=now, trusted=trusted, imported_id=record_id is not None)
    obj.save(force_insert=True)
    _ledger(obj, kind="create", author=author, batch=batch)
    return obj


def allocate_patient_number() -> str:
    """Next number of this node's sequence; must run inside the registering transaction."""
    return allocate_patient_numbers(1)[0]


def allocate_patient_numbers(count: int) -> list[str]:
    """`count` consecutive numbers of this node's sequence under one row lock (inside the transaction)."""
    prefix = self_node_prefix()
    sequence, _ = PatientNumberSequence.objects.select_for_update().get_or_create(prefix=prefix)
    first = sequence.next_value
    sequence.next_value = first + count
    sequence.save(update_fields=["next_value"])
    return [format_patient_number(prefix, first + n) for n in range(count)]


def move_sequence_past_own_numbers() -> None:
    """After a restore from an old backup, sync brings back patients this node numbered after the
    backup: its sequence must move past them, or it would hand out their numbers again."""
    prefix = self_node_prefix()
    numbers = Patient.objects.filter(patient_number__startswith=f"{prefix}-").values_list(
        "patient_number", flat=True
    )
    highest = max((int(n.split("-")[1]) for n in numbers if is_valid_patient_number(n)), default=0)
    row, _ = PatientNumberSequence.objects.select_for_update().get_or_create(prefix=prefix)
    if row.next_value <= highest:
        row.next_value = highest + 1
        row.save(update_fields=["next_value"])


def _keep_patient_number(number: str) -> str:
    """An imported patient number: checked, and this node's sequence moved past it if it is ours."""
    number = number.strip().upper()
    if not is_valid_patient_number(number):
        raise ValidationError({"patient_number": f"{number!r} is not a valid patient number"})
    prefix, sequence, _check = number.split("-")
    if prefix == self_node_prefix():
        row, _ = PatientNumberSequence.objects.select_for_update().get_or_create(prefix=prefix)
        if row.next_value <= int(sequence):
            row.next_value = int(sequence) + 1
            row.save(update_fields=["next_value"])
    return number


@transaction.atomic
def register_patient(
    *,
    author: str,
    given_name: str,
    family_name: str,
    sex: str,
    birth_date: dt.date,
    birth_date_estimated: bool = False,
    village: str = "",
    phone: str = "",
    not_duplicate_of: list[Patient] | None = None,
    confirmed_by=None,
    record_id=None,
    patient_number: str | None = None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
) -> Patient:
    """`record_id`, `patient_number` and `created_at` keep an imported patient's identity (FHIR import);
    a kept number of this node's own prefix moves the node's sequence past it."""
    patient = Patient(
        given_name=given_name.strip(),
        family_name=family_name.strip(),
        sex=sex,
        birth_date=birth_date,
        birth_date_estimated=birth_date_estimated,
        village=village.strip(),
        phone=phone.strip(),
    )
    if birth_date and birth_date > timezone.localdate():
        raise ValidationError({"birth_date": "A birth date cannot be in the future."})
    patient.search_name = fold(f"{patient.given_name} {patient.family_name}")
    if record_id is not None:
        patient.id = record_id
    if patient_number is None:
        patient.patient_number = allocate_patient_number()
    else:
        patient.patient_number = _keep_patient_number(patient_number)
    _save_new(patient, author=author, batch=batch, created_at=created_at)
    DuplicateDismissal.objects.bulk_create(  # one INSERT for the (up to five) suggestions set aside
        DuplicateDismissal(patient=patient, candidate=candidate, confirmed_by=confirmed_by)
        for candidate in not_duplicate_of or []
    )
    return patient


@transaction.atomic
def update_patient(*, patient: Patient, author: str, **changes) -> Patient:
    allowed = {"given_name", "family_name", "sex", "birth_date", "birth_date_estimated", "village", "phone"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))}")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    for name, value in changes.items():
        setattr(patient, name, value.strip() if isinstance(value, str) else value)
    patient.search_name = fold(f"{patient.given_name} {patient.family_name}")
    patient.updated_at = timezone.now()
    patient.version += 1
    _validate(patient)
    patient.save()
    _ledger(patient, kind="update", author=author)
    return patient


@transaction.atomic
def merge_patients(*, keep: Patient, duplicate: Patient, author: str) -> Patient:
    """Mark `duplicate` as merged into `keep`. Both histories stay: the chart of `keep` shows the
    records of every patient merged into it, and nothing is rewritten."""
    if keep.pk == duplicate.pk:
        raise ValidationError("a patient cannot be merged into itself")
    keep = Patient.objects.select_for_update().get(pk=keep.pk)
    duplicate = Patient.objects.select_for_update().get(pk=duplicate.pk)
    if keep.merged_into_id or duplicate.merged_into_id:
        raise ValidationError("one of these patients has already been merged")
    duplicate.merged_into = keep
    duplicate.updated_at = timezone.now()
    duplicate.version += 1
    duplicate.save()
    _ledger(duplicate, kind="merge", author=author)
    return keep


@dataclass
class VitalSign:
    code: str
    value: Decimal


@dataclass
class LabResult:
    code: str
    value: Decimal | None = None
    text: str = ""


@dataclass
class DiagnosisInput:
    icd10_code: str
    onset_date: dt.date | None = None


@dataclass
class PrescriptionInput:
    medication: str
    dose: str = ""
    frequency: str = ""
    duration_days: int | None = None


@dataclass
class EncounterInput:
    kind: str = Encounter.Kind.OUTPATIENT
    reason: str = ""
    started_at: dt.datetime | None = None
    vitals: list[VitalSign] = field(default_factory=list)
    labs: list[LabResult] = field(default_factory=list)
    diagnoses: list[DiagnosisInput] = field(default_factory=list)
    prescriptions: list[PrescriptionInput] = field(default_factory=list)
    note: str = ""


# Fields _observation and record_encounter take from the code tables, never from input (a test checks
# that every table entry fits its field): validating them again per row would be pure cost.
_OBSERVATION_TABLE_FIELDS = ("category", "code", "display", "unit")
_CONDITION_TABLE_FIELDS = ("icd10_code", "display")


def _observation(patient, encounter, code: str, value: Decimal | None, text: str, when) -> Observation:
    if code in OBSERVATION_KINDS:
        kind = OBSERVATION_KINDS[code]
        if value is None:
            raise ValidationError({code: f"{kind.display} needs a value"})
        if not Decimal(kind.minimum) <= value <= Decimal(kind.maximum):
            raise ValidationError(
                {code: f"{kind.display} {value} {kind.unit} is outside {kind.minimum}-{kind.maximum}"}
            )
        category = (
            Observation.Category.LABORATORY
            if code in {"718-7", "2339-0", "20447-9", "24467-3"}
            else (Observation.Category.VITAL_SIGNS)
        )
        return Observation(
            patient=patient,
            encounter=encounter,
            category=category,
            code=code,
            display=kind.display,
            value_decimal=value,
            unit=kind.unit,
            effective_at=when,
        )
    if code in QUALITATIVE_LABS:
        if not text:
            raise ValidationError({code: f"{QUALITATIVE_LABS[code]} needs a result"})
        return Observation(
            patient=patient,
            encounter=encounter,
            category=Observation.Category.LABORATORY,
            code=code,
            display=QUALITATIVE_LABS[code],
            value_text=text,
            effective_at=when,
        )
    raise ValidationError({"code": f"unknown observation code {code!r}"})


def visit_rows(patient: Patient, data: EncounterInput, author: str, when: dt.datetime):
    """The unsaved rows of one visit in write order (encounter, vitals, labs, diagnoses, prescriptions,
    note), each with the fields set from code tables (not re-validated); record_encounter and the bulk
    demo seeding both write these."""
    encounter = Encounter(
        patient=patient, kind=data.kind, reason=data.reason.strip(), started_at=when, practitioner=author
    )
    yield encounter, ()
    for vital in data.vitals:
        yield _observation(patient, encounter, vital.code, vital.value, "", when), _OBSERVATION_TABLE_FIELDS
    for lab in data.labs:
        yield _observation(patient, encounter, lab.code, lab.value, lab.text, when), _OBSERVATION_TABLE_FIELDS
    codes = icd10_codes()
    for diagnosis in data.diagnoses:
        known = codes.get(diagnosis.icd10_code)
        if known is None:
            raise ValidationError({"diagnoses": f"unknown ICD-10 code {diagnosis.icd10_code!r}"})
        condition = Condition(
            patient=patient,
            encounter=encounter,
            icd10_code=known.code,
            display=known.display,
            onset_date=diagnosis.onset_date,
        )
        yield condition, _CONDITION_TABLE_FIELDS
    for item in data.prescriptions:
        prescription = MedicationRequest(
            patient=patient,
            encounter=encounter,
            medication=item.medication.strip(),
            dose=item.dose.strip(),
            frequency=item.frequency.strip(),
            duration_days=item.duration_days,
            prescriber=author,
        )
        yield prescription, ()
    if data.note.strip():
        yield ClinicalNote(patient=patient, encounter=encounter, text=data.note.strip(), author=author), ()


@transaction.atomic
def record_encounter(*, patient: Patient, author: str, data: EncounterInput) -> Encounter:
    """One visit: the encounter, its vitals and labs, diagnoses, prescriptions and note, all or nothing.
    Its ledger entries are appended as one batch, in the order the rows were written."""
    if patient.merged_into_id:
        raise ValidationError("this patient was merged; record the visit on the surviving record")
    now = timezone.now()  # one creation instant for all the rows of the visit
    when = data.started_at or now
    if when > now + dt.timedelta(minutes=5):
        raise ValidationError({"started_at": "An encounter cannot be in the future."})
    batch: list = []
    rows = visit_rows(patient, data, author, when)
    encounter, _ = next(rows)
    _save_new(encounter, author=author, batch=batch, now=now)
    for obj, trusted in rows:
        _save_new(obj, author=author, batch=batch, now=now, trusted=trusted)
    ledger_services.append_many(batch)
    return encounter


@transaction.atomic
def add_note(
    *,
    patient: Patient,
    author: str,
    text: str,
    encounter: Encounter | None = None,
    record_id=None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
    written_by: str = "",
) -> ClinicalNote:
    """`written_by` names the note's author when it differs from the writer (an imported note)."""
    if not text.strip():
        raise ValidationError({"text": "A note cannot be empty."})
    note = ClinicalNote(patient=patient, encounter=encounter, text=text.strip(), author=written_by or author)
    return _save_new(note, author=author, batch=batch, created_at=created_at, record_id=record_id)


def add_attachment(
    *,
    patient: Patient,
    author: str,
    title: str,
    content: bytes,
    media_type: str,
    filename: str,
    encounter: Encounter | None = None,
    record_id=None,
    created_at: dt.datetime | None = None,
    uploaded_by: str = "",
) -> Attachment:
    """Store a file (already checked by the caller's form) and ledger it. The file is written inside
    the transaction's scope and removed again if the transaction fails, so no orphan stays behind."""
    if len(content) > settings.MAX_UPLOAD_BYTES:
        raise ValidationError(
            {"file": f"The file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB."}
        )
    extension = mimetypes.guess_extension(media_type) or ".bin"
    attachment = Attachment(
        patient=patient,
        encounter=encounter,
        title=title.strip() or filename,
        media_type=media_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=uploaded_by or author,
        watermark_status=(
            Attachment.WatermarkStatus.PENDING
            if media_type in IMAGE_MEDIA_TYPES
            else Attachment.WatermarkStatus.NOT_APPLICABLE
        ),
    )
    if record_id is not None:
        attachment.id = record_id
    # Images wait under pending/ (never served) until the watermark task stores the marked copy.
    folder = "pending/" if attachment.watermark_status == Attachment.WatermarkStatus.PENDING else ""
    attachment.file.save(f"{folder}{attachment.id}{extension}", ContentFile(content), save=False)
    try:
        with transaction.atomic():
            _save_new(attachment, author=author, created_at=created_at)
            if folder:
                from .tasks import watermark_attachment

                transaction.on_commit(lambda: watermark_attachment.delay(str(attachment.pk)))
    except Exception:
        attachment.file.delete(save=False)
        raise
    return attachment


def record_update(obj, *, author: str, kind: str = "update"):
    """Save changes already made to a locked record row, as a new version with its ledger entry.
    For system updates (watermarking, sync merges); must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_update must run inside the caller's transaction")
    obj.updated_at = timezone.now()
    obj.version += 1
    _validate(obj)
    obj.save()
    _ledger(obj, kind=kind, author=author)
    return obj


# Single-object writes for the FHIR API and import: the same checks as record_encounter, one row each.
# `record_id` and `created_at` keep an imported resource's id and recorded time; `batch` defers the
# ledger entries to the caller's ledger_services.append_many(batch) inside the same transaction.


def _not_merged(patient: Patient) -> None:
    if patient.merged_into_id:
        raise ValidationError("this patient was merged; record on the surviving record")


def _same_patient(patient: Patient, encounter: Encounter | None) -> None:
    if encounter is not None and encounter.patient_id != patient.pk:
        raise ValidationError({"encounter": "The encounter belongs to another patient."})


@transaction.atomic
def add_encounter(
    *,
    patient: Patient,
    author: str,
    started_at: dt.datetime,
    kind: str = Encounter.Kind.OUTPATIENT,
    reason: str = "",
    practitioner: str = "",
    record_id=None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
) -> Encounter:
    _not_merged(patient)
    if started_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"started_at": "An encounter cannot be in the future."})
    encounter = Encounter(
        patient=patient,
        kind=kind,
        reason=reason.strip(),
        started_at=started_at,
        practitioner=practitioner or author,
    )
    return _save_new(encounter, author=author, batch=batch, created_at=created_at, record_id=record_id)


@transaction.atomic
def add_observation(
    *,
    patient: Patient,
    author: str,
    code: str,
    effective_at: dt.datetime,
    value: Decimal | None = None,
    text: str = "",
    encounter: Encounter | None = None,
    category: str = "",
    display: str = "",
    unit: str = "",
    record_id=None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
) -> Observation:
    """A known code is checked as the encounter form checks it (range, unit); another LOINC code is
    stored as given, and then needs a category, a display and a value."""
    _not_merged(patient)
    _same_patient(patient, encounter)
    if effective_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"effective_at": "An observation cannot be in the future."})
    if code in OBSERVATION_KINDS or code in QUALITATIVE_LABS:
        expected = OBSERVATION_KINDS[code].unit if code in OBSERVATION_KINDS else ""
        if unit and unit != expected:
            raise ValidationError({"unit": f"{code} is recorded in {expected or 'no unit'}, not {unit}"})
        observation = _observation(patient, encounter, code, value, text, effective_at)
    else:
        if category not in Observation.Category.values:
            raise ValidationError({"category": f"unsupported observation category {category!r}"})
        if not display.strip():
            raise ValidationError({"display": f"{code} needs a display name"})
        if value is None and not text.strip():
            raise ValidationError({"value": f"{code} needs a value"})
        observation = Observation(
            patient=patient,
            encounter=encounter,
            category=category,
            code=code,
            display=display.strip(),
            value_decimal=value,
            value_text=text.strip(),
            unit=unit if value is not None else "",
            effective_at=effective_at,
        )
    return _save_new(observation, author=author, batch=batch, created_at=created_at, record_id=record_id)


@transaction.atomic
def add_condition(
    *,
    patient: Patient,
    author: str,
    icd10_code: str,
    display: str = "",
    clinical_status: str = Condition.Status.ACTIVE,
    onset_date: dt.date | None = None,
    encounter: Encounter | None = None,
    record_id=None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
) -> Condition:
    """A code from the node's ICD-10 list takes the list's display; another well-formed ICD-10 code
    needs a display of its own."""
    _not_merged(patient)
    _same_patient(patient, encounter)
    known = icd10_codes().get(icd10_code)
    if known is None and not display.strip():
        raise ValidationError({"icd10_code": f"unknown ICD-10 code {icd10_code!r} and no display"})
    if onset_date and onset_date > timezone.localdate() + dt.timedelta(days=1):
        raise ValidationError({"onset_date": "An onset cannot be in the future."})
    condition = Condition(
        patient=patient,
        encounter=encounter,
        icd10_code=icd10_code,
        display=known.display if known else display.strip(),
        clinical_status=clinical_status,
        onset_date=onset_date,
    )
    return _save_new(condition, author=author, batch=batch, created_at=created_at, record_id=record_id)


@transaction.atomic
def add_prescription(
    *,
    patient: Patient,
    author: str,
    medication: str,
    dose: str = "",
    frequency: str = "",
    duration_days: int | None = None,
    status: str = MedicationRequest.Status.ACTIVE,
    prescriber: str = "",
    encounter: Encounter | None = None,
    record_id=None,
    created_at: dt.datetime | None = None,
    batch: list | None = None,
) -> MedicationRequest:
    _not_merged(patient)
    _same_patient(patient, encounter)
    if not medication.strip():
        raise ValidationError({"medication": "A prescription needs a medication."})
    prescription = MedicationRequest(
        patient=patient,
        encounter=encounter,
        medication=medication.strip(),
        dose=dose.strip(),
        frequency=frequency.strip(),
        duration_days=duration_days,
        status=status,
        prescriber=prescriber or author,
    )
    return _save_new(prescription, author=author, batch=batch, created_at=created_at, record_id=record_id)


_CORRECTABLE = {
    Encounter: {"kind", "reason", "started_at", "practitioner"},
    Observation: {"value_decimal", "value_text", "effective_at"},
    Condition: {"clinical_status", "onset_date"},
    MedicationRequest: {"dose", "frequency", "duration_days", "status"},
}


@transaction.atomic
def correct_record(*, obj, author: str, **changes):
    """A correction to an encounter, observation, condition or prescription (FHIR update): a new
    version with a new ledger entry; earlier entries stay. What a record is about (patient, code,
    medication) cannot change: record a new one instead."""
    model = type(obj)
    unknown = set(changes) - _CORRECTABLE.get(model, set())
    if unknown:
        raise ValidationError(f"cannot change {', '.join(sorted(unknown))} of a {model.__name__}")
    obj = model.objects.select_for_update().get(pk=obj.pk)
    for name, value in changes.items():
        setattr(obj, name, value.strip() if isinstance(value, str) else value)
    if isinstance(obj, Observation) and obj.code in OBSERVATION_KINDS:
        kind = OBSERVATION_KINDS[obj.code]
        value = obj.value_decimal
        if value is None or not Decimal(kind.minimum) <= value <= Decimal(kind.maximum):
            raise ValidationError({"value": f"{kind.display} must be within {kind.minimum}-{kind.maximum}"})
    if getattr(obj, "started_at", None) and obj.started_at > timezone.now() + dt.timedelta(minutes=5):
        raise ValidationError({"started_at": "An encounter cannot be in the future."})
    return record_update(obj, author=author)


# Fields a conflict resolution may set: everything but identity and bookkeeping (and derived search text).
_NOT_RESOLVABLE = {"id", "origin", "created_at", "updated_at", "version", "search_name"}


@transaction.atomic
def resolve_conflict(*, obj, author: str, values: dict[str, str]):
    """A clinician's answer to a sync conflict: the chosen (or newly entered) value of each disputed
    field, written as a new version (kind "resolve") numbered above every version the ledger holds of
    the record, so every node that receives it sees the conflict settled."""
    from ledger.models import Entry

    model = type(obj)
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = set(values) - (set(fields) - _NOT_RESOLVABLE)
    if unknown:
        raise ValidationError(f"cannot set {', '.join(sorted(unknown))} of a {model.__name__}")
    obj = model.objects.select_for_update().get(pk=obj.pk)
    for name, text in values.items():
        field = fields[name]
        value = None if text in (None, "") and field.null else field.to_python(text)
        setattr(obj, name, value.strip() if isinstance(value, str) else value)
    if isinstance(obj, Patient):
        obj.search_name = fold(f"{obj.given_name} {obj.family_name}")
    payloads = Entry.objects.filter(object_id=obj.pk).values_list("payload", flat=True)
    obj.version = max([obj.version] + [json.loads(p).get("version", 0) for p in payloads])
    return record_update(obj, author=author, kind="resolve")
