"""Deterministic synthetic data for a rural clinic: the same seed gives the same people, visits,
values and notes. Conditions and notes follow what a rural clinic in East Africa sees and writes."""

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from .services import DiagnosisInput, EncounterInput, LabResult, PrescriptionInput, VitalSign

ANCHOR = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)  # every visit is before this moment

GIVEN_FEMALE = [
    "Amina",
    "Grace",
    "Fatuma",
    "Wanjiru",
    "Aisha",
    "Mary",
    "Neema",
    "Halima",
    "Esther",
    "Zawadi",
    "Achieng",
    "Rehema",
    "Mwanaisha",
    "Joyce",
    "Agnes",
    "Salma",
    "Faith",
    "Mercy",
    "Aminata",
    "Fanta",
]
GIVEN_MALE = [
    "Juma",
    "Baraka",
    "John",
    "Hassan",
    "Otieno",
    "Peter",
    "Musa",
    "Omari",
    "Joseph",
    "Kamau",
    "Daudi",
    "Ibrahim",
    "Samuel",
    "Emmanuel",
    "Moussa",
    "Amadou",
    "Ali",
    "Paul",
    "Yusuf",
    "Kofi",
]
FAMILY = [
    "Mwangi",
    "Ochieng",
    "Hassan",
    "Njoroge",
    "Mutua",
    "Wambui",
    "Kiprono",
    "Abdallah",
    "Diallo",
    "Traoré",
    "Mohamed",
    "Otieno",
    "Kariuki",
    "Omondi",
    "Said",
    "Kimaro",
    "Massawe",
    "Mollel",
    "Nyambura",
    "Keita",
]
VILLAGES = [
    "Kibaoni",
    "Mlimani",
    "Sokoine",
    "Majengo",
    "Mwembeni",
    "Kijiweni",
    "Bondeni",
    "Msasani",
    "Nyumbani",
    "Mbuyuni",
]


@dataclass(frozen=True)
class Scenario:
    name: str
    icd10: str
    kind: str
    reasons: list[str]
    notes: list[str]
    prescriptions: list[tuple[str, str, str, int]]
    labs: list[tuple[str, object]]  # (code, value or text)
    fever: bool = False


SCENARIOS = [
    Scenario(
        "malaria",
        "B50.9",
        "outpatient",
        ["fever", "fever and chills"],
        [
            "c/o fever x{d}/7, chills, headache, joint pains. No vomiting. Alert, not pale. T {t}. mRDT +ve. "
            "Dx uncomplicated P. falciparum malaria. Rx AL as per weight, first dose observed. RTC if vomiting or no improvement in 48h.",
            "Fever on and off {d} days, body weakness, poor appetite. mRDT positive. No danger signs. "
            "Started ALu BD x3/7, PCM PRN. Counselled on ITN use.",
        ],
        [
            ("Artemether-lumefantrine 20/120 mg", "4 tabs", "BD", 3),
            ("Paracetamol 500 mg", "1 g", "TDS PRN", 3),
        ],
        [("sh:malaria-rdt", "positive")],
        fever=True,
    ),
    Scenario(
        "tb",
        "A15.0",
        "outpatient",
        ["cough for 3 weeks", "chronic cough"],
        [
            "Productive cough > 2/52, night sweats, wt loss ~{w} kg in 2 months. Chest: crepitations R upper zone. "
            "GeneXpert MTB detected, RIF resistance not detected. Started 2RHZE/4RH. Contacts to be traced. DOT supporter: {rel}.",
            "TB follow-up month {m}. Adherent, cough reduced, gaining wt. Sputum smear due at end of intensive phase. Continue RHZE.",
        ],
        [("RHZE (rifampicin/isoniazid/pyrazinamide/ethambutol)", "4 tabs", "OD", 56)],
        [("sh:tb-genexpert", "MTB detected, RIF resistance not detected")],
    ),
    Scenario(
        "hiv",
        "B24",
        "follow_up",
        ["ART refill", "HIV follow-up"],
        [
            "Stable on TLD, good adherence (no missed doses per pill count). No OIs. VL {vl} copies/mL. Continue TLD, next VL in 6 months. "
            "Condoms given. Disclosed to partner.",
            "HIV care visit. c/o mild rash, no fever. Adherence counselling done (missed 3 doses last month). VL pending. Refill TLD x3 months.",
        ],
        [("Tenofovir/lamivudine/dolutegravir (TLD)", "1 tab", "OD", 90)],
        [("20447-9", "vl"), ("24467-3", "cd4")],
    ),
    Scenario(
        "anc",
        "Z34.9",
        "antenatal",
        ["ANC visit", "antenatal care"],
        [
            "ANC {n}th visit, GA {ga} weeks by LMP. FH {fh} cm, FHR present, fetal movements felt. BP {bp}. No oedema. "
            "Hb {hb}. IPTp-SP dose given, FeFol continued. Birth plan discussed.",
            "ANC: G{g}P{p} at {ga}/40. No PV bleeding, no headache. Urine protein neg. Given TT, ITN. Next visit in 4 weeks.",
        ],
        [
            ("Ferrous sulphate + folic acid", "1 tab", "OD", 30),
            ("Sulfadoxine-pyrimethamine (IPTp)", "3 tabs", "stat", 1),
        ],
        [("718-7", "hb")],
    ),
    Scenario(
        "hypertension",
        "I10",
        "follow_up",
        ["HTN review", "headache, BP check"],
        [
            "Known HTN on amlodipine 5 mg. BP today {bp}, not at target. Adherence fair, salt intake high. "
            "Increased amlodipine to 10 mg OD. Lifestyle counselling. Review in 4/52.",
            "HTN clinic: asymptomatic, BP {bp}. Continue amlodipine + HCTZ. Check creatinine when available.",
        ],
        [("Amlodipine 5 mg", "10 mg", "OD", 30), ("Hydrochlorothiazide 25 mg", "25 mg", "OD", 30)],
        [],
    ),
    Scenario(
        "diabetes",
        "E11.9",
        "follow_up",
        ["DM review", "polyuria"],
        [
            "T2DM on metformin. RBS {rbs} mg/dL. c/o polyuria, nocturia. Feet: no ulcers, sensation intact. "
            "Metformin increased to 1 g BD. Diet counselling, review 2/52.",
            "DM follow-up: FBS {rbs}, no hypoglycaemia episodes. Continue metformin, glibenclamide added.",
        ],
        [("Metformin 500 mg", "1 g", "BD", 30)],
        [("2339-0", "rbs")],
    ),
    Scenario(
        "pneumonia",
        "J18.9",
        "outpatient",
        ["cough and fast breathing", "difficult breathing"],
        [
            "Child with cough x{d}/7 and fast breathing, RR {rr}/min, chest indrawing absent. SpO2 {spo2}%. "
            "Dx pneumonia (IMCI). Amoxicillin DT BD x5/7. Mother counselled on danger signs. Review in 2 days.",
            "Cough, fever, pleuritic chest pain. Crackles L base. Dx CAP. Started amoxicillin, PCM.",
        ],
        [("Amoxicillin 250 mg dispersible", "2 tabs", "BD", 5)],
        [],
        fever=True,
    ),
    Scenario(
        "diarrhoea",
        "A09",
        "outpatient",
        ["diarrhoea", "watery stools"],
        [
            "Watery diarrhoea x{d}/7, 5-6 episodes/day, no blood. Some dehydration (restless, drinks eagerly, skin pinch slow). "
            "Plan B: ORS 75 ml/kg over 4h, zinc x10/7. Continue breastfeeding.",
            "Loose stools {d} days, no dehydration. ORS and zinc given, hygiene counselling.",
        ],
        [("ORS sachets", "1 sachet", "after each loose stool", 5), ("Zinc 20 mg", "20 mg", "OD", 10)],
        [],
    ),
    Scenario(
        "malnutrition",
        "E43",
        "outpatient",
        ["poor weight gain", "swelling of feet"],
        [
            "Child {age} months, MUAC {muac} cm (red), bilateral pitting oedema +. Appetite test passed. "
            "Dx SAM without complications. Admitted to OTP: RUTF, amoxicillin. Weekly review.",
            "OTP follow-up: MUAC {muac} cm, wt gain {w} g/kg/day. Oedema resolving. Continue RUTF.",
        ],
        [
            ("RUTF (ready-to-use therapeutic food)", "2 sachets", "daily", 7),
            ("Amoxicillin 250 mg", "250 mg", "BD", 5),
        ],
        [],
    ),
]

RELATIONS = ["wife", "husband", "mother", "brother", "neighbour", "CHW"]


def _decimal(value: float, places: int = 1) -> Decimal:
    return Decimal(f"{value:.{places}f}")


@dataclass
class DemoPatient:
    given_name: str
    family_name: str
    sex: str
    birth_date: dt.date
    village: str
    phone: str
    encounters: list[tuple[dt.datetime, EncounterInput]]
    scenario: str = ""  # which scenario made this person: the search evaluation's labels come from it


def _age_for(scenario: Scenario, rng: random.Random) -> int:
    if scenario.name in {"pneumonia", "malnutrition", "diarrhoea"} and rng.random() < 0.7:
        return rng.randint(0, 4)
    if scenario.name == "anc":
        return rng.randint(17, 40)
    if scenario.name in {"hypertension", "diabetes"}:
        return rng.randint(40, 80)
    return rng.randint(5, 65)


def _fill(template: str, rng: random.Random, bp: str, values: dict) -> str:
    return template.format(
        d=rng.randint(2, 5),
        t=values.get("t", "38.6"),
        w=rng.randint(3, 8),
        rel=rng.choice(RELATIONS),
        m=rng.randint(2, 6),
        vl=values.get("vl", "<50"),
        n=rng.randint(1, 4),
        ga=rng.randint(14, 36),
        fh=rng.randint(14, 34),
        bp=bp,
        hb=values.get("hb", "11.2"),
        g=rng.randint(1, 5),
        p=rng.randint(0, 4),
        rbs=values.get("rbs", "180"),
        rr=rng.randint(45, 60),
        spo2=rng.randint(91, 97),
        age=rng.randint(6, 48),
        muac=values.get("muac", "11.0"),
    )


def demo_patient(rng: random.Random) -> DemoPatient:
    scenario = rng.choice(SCENARIOS)
    sex = "female" if scenario.name == "anc" or rng.random() < 0.55 else "male"
    given = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
    age = _age_for(scenario, rng)
    birth = (ANCHOR - dt.timedelta(days=age * 365 + rng.randint(0, 364))).date()
    phone = f"+2557{rng.randint(10000000, 99999999)}" if rng.random() < 0.6 else ""
    encounters = []
    visit_count = rng.randint(1, 4)
    start = ANCHOR - dt.timedelta(days=rng.randint(30, 720))
    for visit in range(visit_count):
        when = start + dt.timedelta(
            days=visit * rng.randint(14, 60), hours=rng.randint(0, 8), minutes=rng.randint(0, 59)
        )
        if when >= ANCHOR:
            break
        child = age < 5
        temp = rng.uniform(37.8, 39.8) if scenario.fever else rng.uniform(36.2, 37.4)
        systolic = rng.randint(145, 185) if scenario.name == "hypertension" else rng.randint(100, 135)
        diastolic = rng.randint(90, 110) if scenario.name == "hypertension" else rng.randint(60, 85)
        weight = rng.uniform(5, 18) if child else rng.uniform(42, 90)
        values = {
            "t": f"{temp:.1f}",
            "hb": f"{rng.uniform(8.5, 12.5):.1f}",
            "rbs": str(rng.randint(140, 320)),
            "vl": str(rng.choice([0, 0, 0, 40, 1200, 56000])),
            "muac": f"{rng.uniform(10.0, 11.4):.1f}",
        }
        vitals = [
            VitalSign("8310-5", _decimal(temp)),
            VitalSign("8867-4", Decimal(rng.randint(70, 130))),
            VitalSign("29463-7", _decimal(weight)),
        ]
        if not child:
            vitals += [VitalSign("8480-6", Decimal(systolic)), VitalSign("8462-4", Decimal(diastolic))]
        else:
            vitals.append(VitalSign("9279-1", Decimal(rng.randint(30, 60))))
        if scenario.name == "malnutrition":
            vitals.append(VitalSign("56072-2", Decimal(values["muac"])))
        labs = []
        for code, value in scenario.labs:
            if code.startswith("sh:"):
                labs.append(LabResult(code, None, str(value)))
            elif value == "vl":
                labs.append(LabResult(code, Decimal(values["vl"])))
            elif value == "cd4":
                labs.append(LabResult(code, Decimal(rng.randint(150, 900))))
            else:
                labs.append(LabResult(code, Decimal(values[value])))
        note = _fill(rng.choice(scenario.notes), rng, f"{systolic}/{diastolic}", values)
        encounter = EncounterInput(
            kind=scenario.kind,
            reason=rng.choice(scenario.reasons),
            started_at=when,
            vitals=vitals,
            labs=labs,
            diagnoses=[DiagnosisInput(scenario.icd10)] if visit == 0 or rng.random() < 0.3 else [],
            prescriptions=[PrescriptionInput(*rx) for rx in scenario.prescriptions],
            note=note,
        )
        encounters.append((when, encounter))
    return DemoPatient(
        given, rng.choice(FAMILY), sex, birth, rng.choice(VILLAGES), phone, encounters, scenario.name
    )


def write_demo_patient(person: DemoPatient, *, author: str = "seed_demo", clinician: str = "demo_clinician"):
    """Register one generated patient and record their visits through the record services (so every
    row is on the ledger), in one transaction. Returns the patient."""
    from django.db import transaction

    from . import services

    with transaction.atomic():
        patient = services.register_patient(
            author=author,
            given_name=person.given_name,
            family_name=person.family_name,
            sex=person.sex,
            birth_date=person.birth_date,
            village=person.village,
            phone=person.phone,
        )
        for _when, encounter in person.encounters:
            services.record_encounter(patient=patient, author=clinician, data=encounter)
    return patient
