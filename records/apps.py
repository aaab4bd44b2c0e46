from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Clinical records"

    def ready(self):
        from functools import partial

        from ledger.registry import register, register_applier, register_retrier

        from . import models
        from .canonical import attnames, payload_from_values
        from .replication import make_applier, retry_pending

        for model in (
            models.Patient,
            models.Encounter,
            models.Observation,
            models.Condition,
            models.MedicationRequest,
            models.ClinicalNote,
            models.Attachment,
        ):
            fields = attnames(model)
            assert fields[0] == "id", "verify merge-joins rows by their first field, the primary key"
            register(model, fields, partial(payload_from_values, model))
            register_applier(model._meta.object_name, make_applier(model))
        register_retrier(retry_pending)
