from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Clinical records"

    def ready(self):
        from ledger.registry import register

        from . import models
        from .canonical import record_payload

        for model in (
            models.Patient,
            models.Encounter,
            models.Observation,
            models.Condition,
            models.MedicationRequest,
            models.ClinicalNote,
            models.Attachment,
        ):
            register(model, record_payload)
