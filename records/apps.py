from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = "Clinical records"

    def ready(self):
        from functools import partial

        from ledger.registry import (
            register,
            register_applier,
            register_batch_applier,
            register_own_log_restored,
            register_retrier,
        )

        from . import models
        from .canonical import attnames, canonical_sql, payload_from_values, raw_payload_reader
        from .replication import apply_batch, make_applier, retry_pending

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
            register(
                model,
                fields,
                partial(payload_from_values, model),
                canonical_sql=partial(canonical_sql, model),
                raw_reader=partial(raw_payload_reader, model),
            )
            register_applier(model._meta.object_name, make_applier(model))
        register_retrier(retry_pending)
        register_batch_applier(apply_batch)
        from .services import move_sequence_past_own_numbers

        register_own_log_restored(move_sequence_past_own_numbers)
