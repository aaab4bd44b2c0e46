"""Clinical code lists: vital signs and labs (LOINC where known, UCUM units) and ICD-10 diagnoses."""

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ObservationKind:
    key: str  # form field name
    code: str  # LOINC code, or "sh:..." for a local code where no LOINC code is settled
    display: str
    unit: str  # UCUM
    label: str
    minimum: str
    maximum: str


VITAL_SIGNS = [
    ObservationKind("temperature", "8310-5", "Body temperature", "Cel", _("Temperature (°C)"), "25", "45"),
    ObservationKind("pulse", "8867-4", "Heart rate", "/min", _("Pulse (/min)"), "20", "250"),
    ObservationKind(
        "respiratory_rate", "9279-1", "Respiratory rate", "/min", _("Respiratory rate (/min)"), "4", "120"
    ),
    ObservationKind(
        "systolic", "8480-6", "Systolic blood pressure", "mm[Hg]", _("BP systolic (mmHg)"), "40", "300"
    ),
    ObservationKind(
        "diastolic", "8462-4", "Diastolic blood pressure", "mm[Hg]", _("BP diastolic (mmHg)"), "20", "200"
    ),
    ObservationKind("weight", "29463-7", "Body weight", "kg", _("Weight (kg)"), "0.3", "350"),
    ObservationKind("height", "8302-2", "Body height", "cm", _("Height (cm)"), "20", "250"),
    ObservationKind(
        "spo2", "59408-5", "Oxygen saturation by pulse oximetry", "%", _("SpO₂ (%)"), "40", "100"
    ),
    ObservationKind("muac", "56072-2", "Mid-upper arm circumference", "cm", _("MUAC (cm)"), "5", "60"),
]

LABS = [
    ObservationKind("hemoglobin", "718-7", "Hemoglobin", "g/dL", _("Haemoglobin (g/dL)"), "1", "25"),
    ObservationKind(
        "glucose", "2339-0", "Glucose in blood", "mg/dL", _("Blood glucose (mg/dL)"), "10", "1000"
    ),
    ObservationKind(
        "viral_load", "20447-9", "HIV 1 RNA viral load", "{copies}/mL", _("HIV viral load"), "0", "100000000"
    ),
    ObservationKind("cd4", "24467-3", "CD4 count", "/uL", _("CD4 (/µL)"), "0", "5000"),
]

QUALITATIVE_LABS = {
    "sh:malaria-rdt": "Malaria rapid diagnostic test",
    "sh:tb-genexpert": "TB GeneXpert MTB/RIF",
    "sh:hiv-rapid": "HIV rapid test",
}

OBSERVATION_KINDS = {kind.code: kind for kind in VITAL_SIGNS + LABS}


@dataclass(frozen=True)
class Diagnosis:
    code: str
    display: str


@cache
def icd10_codes() -> dict[str, Diagnosis]:
    path = Path(__file__).parent / "data" / "icd10_rural.csv"
    with path.open(encoding="utf-8") as handle:
        return {row["code"]: Diagnosis(row["code"], row["display"]) for row in csv.DictReader(handle)}
