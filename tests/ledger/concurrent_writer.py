"""A writer process for the concurrency test: registers patients and records visits until time runs out."""

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")
django.setup()

from records import services  # noqa: E402
from records.services import EncounterInput  # noqa: E402

seconds, worker = float(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + seconds
written = 0
while time.monotonic() < deadline:
    patient = services.register_patient(
        author=f"writer{worker}",
        given_name=f"W{worker}",
        family_name=f"N{written}",
        sex="unknown",
        birth_date=__import__("datetime").date(2000, 1, 1),
    )
    services.record_encounter(
        patient=patient, author=f"writer{worker}", data=EncounterInput(note=f"note {written}")
    )
    written += 3
print(written)
