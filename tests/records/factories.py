import datetime as dt
from decimal import Decimal

from records import services
from records.services import DiagnosisInput, EncounterInput, PrescriptionInput, VitalSign


def patient(**overrides):
    fields = dict(
        author="tester",
        given_name="Amina",
        family_name="Mwangi",
        sex="female",
        birth_date=dt.date(1990, 3, 14),
        village="Kibaoni",
        phone="+255712345678",
    )
    fields.update(overrides)
    return services.register_patient(**fields)


def encounter(p, note="c/o fever x3/7. mRDT +ve. Rx AL.", **overrides):
    data = EncounterInput(
        reason="fever",
        vitals=[VitalSign("8310-5", Decimal("38.6")), VitalSign("8480-6", Decimal("120"))],
        diagnoses=[DiagnosisInput("B50.9")],
        prescriptions=[PrescriptionInput("Artemether-lumefantrine", "4 tabs", "BD", 3)],
        note=note,
    )
    for key, value in overrides.items():
        setattr(data, key, value)
    return services.record_encounter(patient=p, author="tester", data=data)
