"""Reads of clinical records. Each takes the reading user and returns only what their role may see."""

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.db.models.lookups import Contains
from django.utils import timezone

from accounts.roles import Capability, has_capability
from ledger.models import Entry

from .canonical import record_payload
from .codes import VITAL_SIGNS
from .models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from .patient_number import is_valid_patient_number
from .text import fold

CHART_OBSERVATION_FIELDS = (
    "category",
    "code",
    "display",
    "value_decimal",
    "value_text",
    "unit",
    "effective_at",
)
UNIT_DISPLAY = {"Cel": "°C", "mm[Hg]": "mmHg", "/min": "/min", "{copies}/mL": "copies/mL"}


def _require(user, capability: Capability) -> None:
    if not has_capability(user, capability):
        raise PermissionDenied


def name_contains(token: str) -> Contains:
    """search_name contains the (folded) token, written as PostgreSQL's trigram index is built.

    search_name is lower case already: LOWER() only gives the pattern searches an expression of their
    own for that index (records migration 0004), so that exact-name lookups keep the B-tree (a trigram
    index on the column itself was also chosen for `=`, and was 10-30x slower there).
    """
    return Contains(Lower("search_name"), token)


def search_patients(*, user, query: str, limit: int = 20) -> list[Patient]:
    """By patient number, phone, or any part of the name (accents and case ignored)."""
    _require(user, Capability.VIEW_PATIENTS)
    query = (query or "").strip()
    if not query:
        return []
    base = Patient.objects.filter(merged_into__isnull=True)
    if is_valid_patient_number(query):
        return list(base.filter(patient_number=query.upper())[:limit])
    digits = "".join(c for c in query if c.isdigit())
    if len(digits) >= 6 and len(digits) >= len(query.replace(" ", "").replace("+", "")) - 1:
        return list(base.filter(phone__contains=digits[-9:])[:limit])
    condition = Q()
    for token in fold(query).split():
        condition &= Q(name_contains(token))
    return list(base.filter(condition).order_by("family_name", "given_name")[:limit])


def get_patient(*, user, patient_id) -> Patient:
    _require(user, Capability.VIEW_PATIENTS)
    return Patient.objects.get(pk=patient_id)


def patient_group_ids(patient: Patient) -> list:
    """The patient and everyone merged into them: a merge keeps both histories in one chart."""
    ids = [patient.pk]
    frontier = [patient.pk]
    while frontier:
        merged = list(Patient.objects.filter(merged_into__in=frontier).values_list("pk", flat=True))
        ids.extend(merged)
        frontier = merged
    return ids


@dataclass
class Chart:
    patient: Patient
    merged: list[Patient]
    encounters: list[Encounter]
    clinical: bool
    conditions: list[Condition] = field(default_factory=list)
    medications: list[MedicationRequest] = field(default_factory=list)
    notes: list[ClinicalNote] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    vitals: dict[str, list[Observation]] = field(default_factory=dict)
    vital_rows: list[dict] = field(default_factory=list)
    labs: list[Observation] = field(default_factory=list)
    verified: dict = field(default_factory=dict)


def verification_marks(objects) -> dict:
    """pk -> True when the row equals the payload of its latest ledger entry (one query for all)."""
    by_id = {obj.pk: obj for obj in objects}
    latest: dict = {}
    for object_id, hlc, origin, index, payload in Entry.objects.filter(object_id__in=list(by_id)).values_list(
        "object_id", "hlc", "origin", "index", "payload"
    ):
        # The same order as ledger.selectors.LATEST_FIRST: the version every node shows.
        if object_id not in latest or (hlc, origin, index) > latest[object_id][0]:
            latest[object_id] = ((hlc, origin, index), payload)
    return {
        pk: pk in latest and json.loads(latest[pk][1]) == record_payload(obj) for pk, obj in by_id.items()
    }


def patient_chart(*, user, patient: Patient, encounter_limit: int = 30) -> Chart:
    """Everything the chart page shows. A clerk gets demographics and visit dates only."""
    _require(user, Capability.VIEW_PATIENTS)
    ids = patient_group_ids(patient)
    merged = list(Patient.objects.filter(pk__in=ids[1:]))
    encounters = list(Encounter.objects.filter(patient__in=ids).order_by("-started_at")[:encounter_limit])
    chart = Chart(
        patient=patient,
        merged=merged,
        encounters=encounters,
        clinical=has_capability(user, Capability.VIEW_CLINICAL),
    )
    if not chart.clinical:
        chart.verified = verification_marks([patient])
        return chart
    # The page shows only the visit date of each row's encounter: joined in as `encounter_started_at`
    # rather than building a whole Encounter for each of a hundred rows.
    visit_date = F("encounter__started_at")
    chart.conditions = list(
        Condition.objects.filter(patient__in=ids)
        .annotate(encounter_started_at=visit_date)
        .order_by("-created_at")[:50]
    )
    chart.medications = list(
        MedicationRequest.objects.filter(patient__in=ids)
        .annotate(encounter_started_at=visit_date)
        .order_by("-created_at")[:50]
    )
    chart.notes = list(
        ClinicalNote.objects.filter(patient__in=ids)
        .annotate(encounter_started_at=visit_date)
        .order_by("-created_at")[:30]
    )
    chart.attachments = list(Attachment.objects.filter(patient__in=ids).order_by("-created_at")[:30])
    # Every observation of the patient is read (labs are all listed), so only the fields the page shows:
    # a long-followed patient has hundreds, and building full rows was a large part of the chart's cost.
    observations = (
        Observation.objects.filter(patient__in=ids).only(*CHART_OBSERVATION_FIELDS).order_by("effective_at")
    )
    for observation in observations:
        if observation.category == Observation.Category.VITAL_SIGNS:
            chart.vitals.setdefault(observation.code, []).append(observation)
        else:
            chart.labs.append(observation)
    chart.labs.reverse()
    for kind in VITAL_SIGNS:
        series = chart.vitals.get(kind.code)
        if series:
            chart.vital_rows.append(
                {
                    "label": kind.label,
                    "unit_display": UNIT_DISPLAY.get(kind.unit, kind.unit),
                    "latest": series[-1],
                    "observations": series,
                }
            )
    chart.verified = verification_marks([patient, *chart.conditions, *chart.medications, *chart.notes])
    return chart


def get_attachment(*, user, attachment_id) -> Attachment:
    _require(user, Capability.VIEW_CLINICAL)
    return Attachment.objects.get(pk=attachment_id)


def get_note(*, user, note_id) -> ClinicalNote:
    _require(user, Capability.VIEW_CLINICAL)
    return ClinicalNote.objects.get(pk=note_id)


@dataclass(frozen=True)
class DuplicateCandidate:
    patient: Patient
    score: float
    reasons: list[str]


def _name_similarity(a: str, b: str, floor: float = 0.0) -> float:
    """The better of the two word orders; 0.0 when neither can reach `floor`. quick_ratio (letters in
    common, either order) bounds ratio from above: rows below the floor on it alone cost a third."""
    direct = SequenceMatcher(None, a, b)
    if direct.quick_ratio() < floor:
        return 0.0
    swapped = SequenceMatcher(None, a, " ".join(reversed(b.split()))).ratio()
    return max(direct.ratio(), swapped)


# Rows read per candidate query. The queries go from the strongest evidence to the weakest, so that at
# 100,000 patients the thousands who merely share a birth window cannot crowd out the one with the same
# name (one unordered query cut at 2,000 rows missed an exact copy 9 times in 10).
CANDIDATES_PER_QUERY = 500
_CANDIDATE_FIELDS = ("pk", "search_name", "phone", "birth_date", "sex", "village")


def _candidate_queries(
    name: str, name_tokens: list[str], phone: str, birth_date: dt.date | None, village: str
):
    live = Patient.objects.filter(merged_into__isnull=True)
    named = Q()
    for token in name_tokens:
        named |= Q(name_contains(token[:4]))
    born_near = (
        Q(birth_date__range=(birth_date - dt.timedelta(days=730), birth_date + dt.timedelta(days=730)))
        if birth_date
        else None
    )
    if phone:
        yield live.filter(phone=phone)
    yield live.filter(search_name__in={name, " ".join(reversed(name.split()))})  # the same name
    if named and born_near:
        yield live.filter(named & born_near)
    if named:
        yield live.filter(named)
    if born_near and village:  # a misspelt name in the same village and age
        yield live.filter(born_near, village__iexact=village)


def possible_duplicates(
    *,
    user,
    given_name: str,
    family_name: str,
    sex: str = "",
    birth_date: dt.date | None = None,
    village: str = "",
    phone: str = "",
    limit: int = 5,
) -> list[DuplicateCandidate]:
    """Existing patients who may be the person being registered, best first.

    Candidates come from bounded queries, strongest evidence first (same phone; same name; a name token
    in common and a birth within two years; a name token in common; same village and birth window), then
    get a score from name similarity, sex, birth date, village and phone.
    """
    _require(user, Capability.VIEW_PATIENTS)
    name = fold(f"{given_name} {family_name}")
    tokens = [t for t in name.split() if len(t) >= 3]
    phone, village = phone.strip(), village.strip()
    # Hundreds of rows a registration, and names and villages repeat among them (many Amina Mwangi):
    # each distinct one is compared once. Same results, a fraction of the CPU (tests/bench/clinic_cpu).
    similarity = functools.cache(functools.partial(_name_similarity, name, floor=0.6))
    same_village = functools.cache(lambda theirs: fold(theirs) == fold(village))
    seen, scored = set(), []
    for query in _candidate_queries(name, tokens, phone, birth_date, village):
        for row in query.values_list(*_CANDIDATE_FIELDS)[:CANDIDATES_PER_QUERY]:
            if row[0] in seen:
                continue
            seen.add(row[0])
            candidate = _score(row, similarity, sex, birth_date, village and same_village, phone)
            if candidate is not None:
                scored.append(candidate)
    scored.sort(key=lambda c: c[0], reverse=True)
    best = scored[:limit]
    patients = Patient.objects.in_bulk([pk for _, pk, _ in best])
    return [DuplicateCandidate(patients[pk], score, reasons) for score, pk, reasons in best]


def _score(row, name_similarity, sex: str, birth_date, same_village, phone: str):
    """(score, pk, reasons) of one candidate row, or None below the thresholds. `name_similarity` maps
    a folded name to its similarity to the new one; `same_village` a village to whether it is the new
    one's (empty when no village was given)."""
    pk, search_name, their_phone, their_birth, their_sex, their_village = row
    similarity = name_similarity(search_name)
    if similarity < 0.6:
        return None
    score, reasons = similarity * 0.5, []
    if similarity >= 0.8:
        reasons.append("similar name")
    if phone and their_phone == phone:
        score += 0.3
        reasons.append("same phone")
    if birth_date:
        gap = abs((their_birth - birth_date).days)
        if gap == 0:
            score += 0.2
            reasons.append("same birth date")
        elif gap <= 366:
            score += 0.1
            reasons.append("birth within a year")
    if sex and their_sex == sex:
        score += 0.05
    elif sex and their_sex != sex and their_sex != "unknown":
        score -= 0.2
    if same_village and same_village(their_village):
        score += 0.1
        reasons.append("same village")
    return (round(score, 2), pk, reasons) if score >= 0.6 else None


def recent_patients(*, user, limit: int = 10) -> list[Patient]:
    _require(user, Capability.VIEW_PATIENTS)
    since = timezone.now() - dt.timedelta(days=30)
    return list(
        Patient.objects.filter(updated_at__gte=since, merged_into__isnull=True).order_by("-updated_at")[
            :limit
        ]
    )
