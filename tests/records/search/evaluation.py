"""The search evaluation: questions over seeded demo data whose relevant records come from how the
data was generated (records.demo tells which scenario made each patient), never from a hand-written
list of results. Used by the floor-quality test and by tests/bench/bench_search.py.

Relevance is per record: a question names a scenario and the kinds of record that answer it (for
"viral load": the viral-load lab results of the HIV patients); every such record is relevant.
Recall@k is capped: |relevant in top k| / min(k, |relevant|).
"""

import math
import random
from dataclasses import dataclass, field

from records.demo import demo_patient, write_demo_patient
from records.models import ClinicalNote, Condition, Encounter, MedicationRequest, Observation


@dataclass(frozen=True)
class Spec:
    """Which records answer: `types` among condition, note, encounter, medication, lab:<code>."""

    question: str
    scenario: str  # "" for a question whose answer is absent from the records
    types: tuple[str, ...] = ()
    medication: str = ""  # a prefix of the prescribed medication, for medication questions
    per_patient: bool = False  # asked on one patient's chart


CN = ("condition", "note")
GLOBAL = [
    Spec("Which patients have malaria?", "malaria", CN),
    Spec("paludisme", "malaria", CN),
    Spec("homa ya malaria", "malaria", CN),
    Spec("positive malaria RDT", "malaria", ("lab:sh:malaria-rdt", "note")),
    Spec("mRDT +ve", "malaria", ("lab:sh:malaria-rdt", "note")),
    Spec("who was given artemether-lumefantrine", "malaria", ("medication",), "Artemether"),
    Spec("tuberculosis on treatment", "tb", (*CN, "medication")),
    Spec("kifua kikuu", "tb", CN),
    Spec("tuberculose pulmonaire", "tb", CN),
    Spec("GeneXpert MTB detected", "tb", ("lab:sh:tb-genexpert", "note")),
    Spec("cough for three weeks with night sweats and weight loss", "tb", ("note",)),
    Spec("RHZE", "tb", ("medication", "note")),
    Spec("HIV patients on ART", "hiv", (*CN, "medication")),
    Spec("VIH", "hiv", CN),
    Spec("UKIMWI", "hiv", CN),
    Spec("viral load results", "hiv", ("lab:20447-9",)),
    Spec("VL", "hiv", ("lab:20447-9", "note")),
    Spec("charge virale", "hiv", ("lab:20447-9",)),
    Spec("CD4 count", "hiv", ("lab:24467-3",)),
    Spec("TLD refill", "hiv", ("medication", "note")),
    Spec("missed doses, adherence counselling", "hiv", ("note",)),
    Spec("antenatal care visits", "anc", ("encounter", *CN)),
    Spec("ANC", "anc", ("encounter", *CN)),
    Spec("pregnant women", "anc", ("encounter", *CN)),
    Spec("consultation prénatale", "anc", ("encounter", *CN)),
    Spec("kliniki ya wajawazito", "anc", ("encounter", *CN)),
    Spec("IPTp sulfadoxine-pyrimethamine", "anc", ("medication", "note"), "Sulfadoxine"),
    Spec("haemoglobin in pregnancy", "anc", ("lab:718-7", "note")),
    Spec("iron and folic acid supplements", "anc", ("medication",), "Ferrous"),
    Spec("HTN", "hypertension", (*CN, "encounter")),
    Spec("hypertension", "hypertension", CN),
    Spec("shinikizo la damu", "hypertension", CN),
    Spec("hypertension artérielle", "hypertension", CN),
    Spec("BP not at target", "hypertension", ("note",)),
    Spec("amlodipine", "hypertension", ("medication", "note"), "Amlodipine"),
    Spec("hydrochlorothiazide", "hypertension", ("medication",), "Hydrochlorothiazide"),
    Spec("diabetes", "diabetes", CN),
    Spec("kisukari", "diabetes", CN),
    Spec("diabète de type 2", "diabetes", CN),
    Spec("random blood sugar", "diabetes", ("lab:2339-0", "note")),
    Spec("metformin dose increased", "diabetes", ("medication", "note")),
    Spec("pneumonia in children", "pneumonia", CN),
    Spec("nimonia", "pneumonia", CN),
    Spec("pneumonie", "pneumonia", CN),
    Spec("fast breathing, chest indrawing", "pneumonia", ("note",)),
    Spec("amoxicillin for pneumonia", "pneumonia", ("medication", "note"), "Amoxicillin"),
    Spec("diarrhoea with dehydration", "diarrhoea", CN),
    Spec("kuhara", "diarrhoea", CN),
    Spec("diarrhée aiguë", "diarrhoea", CN),
    Spec("ORS and zinc", "diarrhoea", ("medication", "note")),
    Spec("children with severe malnutrition", "malnutrition", CN),
    Spec("utapiamlo", "malnutrition", CN),
    Spec("malnutrition aiguë sévère", "malnutrition", CN),
    Spec("MUAC in the red zone", "malnutrition", ("lab:56072-2", "note")),
    Spec("RUTF", "malnutrition", ("medication", "note")),
]
PER_PATIENT = [
    Spec("last viral load for this patient", "hiv", ("lab:20447-9",), per_patient=True),
    Spec(
        "this patient's blood pressure",
        "hypertension",
        ("lab:8480-6", "lab:8462-4", "note"),
        per_patient=True,
    ),
    Spec("what was prescribed for this patient", "malaria", ("medication",), per_patient=True),
    Spec("malaria test result", "malaria", ("lab:sh:malaria-rdt", "note"), per_patient=True),
    Spec("MUAC", "malnutrition", ("lab:56072-2", "note"), per_patient=True),
]
ABSENT = [
    Spec("snake bite with local swelling", ""),
    Spec("rabies vaccine after a dog bite", ""),
    Spec("chemotherapy for breast cancer", ""),
    Spec("cataract surgery", ""),
    Spec("haemodialysis for kidney failure", ""),
    Spec("epileptic seizures on phenobarbital", ""),
    Spec("sickle cell crisis", ""),
    Spec("measles outbreak vaccination", ""),
    Spec("fractured femur after a road traffic accident", ""),
    Spec("morsure de serpent", ""),
    Spec("kuumwa na nyoka", ""),
]


@dataclass
class Question:
    text: str
    scenario: str
    relevant: set = field(default_factory=set)  # record ids (str)
    patient_id: str | None = None


def seed(*, patients: int, seed: int) -> dict[str, list]:
    """Seeded demo patients written through the record services; scenario -> [patient]."""
    rng = random.Random(seed)
    by_scenario: dict[str, list] = {}
    for _ in range(patients):
        person = demo_patient(rng)
        patient = write_demo_patient(person)
        by_scenario.setdefault(person.scenario, []).append(patient)
    return by_scenario


def _relevant(spec: Spec, patient_ids: list) -> set:
    ids: set = set()
    for kind in spec.types:
        if kind == "condition":
            rows = Condition.objects.filter(patient__in=patient_ids)
        elif kind == "note":
            rows = ClinicalNote.objects.filter(patient__in=patient_ids)
        elif kind == "encounter":
            rows = Encounter.objects.filter(patient__in=patient_ids)
        elif kind == "medication":
            rows = MedicationRequest.objects.filter(patient__in=patient_ids)
            if spec.medication:
                rows = rows.filter(medication__startswith=spec.medication)
        elif kind.startswith("lab:"):
            rows = Observation.objects.filter(patient__in=patient_ids, code=kind[4:])
        else:
            raise ValueError(kind)
        ids.update(str(pk) for pk in rows.values_list("pk", flat=True))
    return ids


def questions(by_scenario: dict[str, list]) -> list[Question]:
    out = []
    for spec in GLOBAL:
        out.append(
            Question(spec.question, spec.scenario, _relevant(spec, by_scenario.get(spec.scenario, [])))
        )
    for spec in PER_PATIENT:
        for patient in by_scenario.get(spec.scenario, [])[:2]:
            relevant = _relevant(spec, [patient])
            if relevant:
                out.append(Question(spec.question, spec.scenario, relevant, str(patient.pk)))
    for spec in ABSENT:
        out.append(Question(spec.question, ""))
    return out


# --- metrics -------------------------------------------------------------------------------------------


def unique_records(record_ids: list[str]) -> list[str]:
    seen, out = set(), []
    for record_id in record_ids:
        if record_id not in seen:
            seen.add(record_id)
            out.append(record_id)
    return out


def recall_at(ranked: list[str], relevant: set, k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / min(k, len(relevant))


def mrr_at(ranked: list[str], relevant: set, k: int) -> float:
    for rank, record_id in enumerate(ranked[:k], start=1):
        if record_id in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: list[str], relevant: set, k: int) -> float:
    gain = sum(1.0 / math.log2(rank + 1) for rank, r in enumerate(ranked[:k], start=1) if r in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return gain / ideal if ideal else 0.0
