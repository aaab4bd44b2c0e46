"""Step 4 of a bundle import: every planned create and update through records.services in one
transaction (so each gets its ledger entry); any failure rolls the bundle back and removes stored files."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ledger import services as ledger_services

from .. import services
from ..models import Attachment
from .import_plan import ORDER, Plan, row_of
from .outcome import FhirError, Issue


def write_plans(plans: list[Plan], author: str) -> None:
    stored_files: list[Attachment] = []
    batch: list = []
    failures: list[Issue] = []
    try:
        with transaction.atomic():
            for kind in ORDER:
                for plan in plans:
                    if plan.kind != kind or plan.action not in {"create", "update"}:
                        continue
                    try:
                        if plan.action == "create":
                            plan.obj = _create(plan, author, batch)
                            if isinstance(plan.obj, Attachment):
                                stored_files.append(plan.obj)
                        else:
                            ledger_services.append_many(batch)
                            batch.clear()
                            plan.obj = _update(plan, author)
                    except ValidationError as error:
                        failures.extend(_validation_issues(plan, error))
                    except IntegrityError as error:
                        failures.append(Issue("conflict", f"the database refused it: {error}", plan.where))
            ledger_services.append_many(batch)
            batch.clear()
            for plan in plans:
                merged_into = plan.resolved.get("merged_into")
                if plan.action == "create" and merged_into is not None and not failures:
                    try:
                        services.merge_patients(keep=row_of(merged_into), duplicate=plan.obj, author=author)
                        plan.obj.refresh_from_db()
                    except ValidationError as error:
                        failures.extend(_validation_issues(plan, error))
            if failures:
                raise FhirError(failures, status=422)
    except BaseException:
        for attachment in stored_files:
            attachment.file.delete(save=False)
        for plan in plans:
            plan.obj = None
        raise


def _validation_issues(plan: Plan, error: ValidationError) -> list[Issue]:
    if hasattr(error, "error_dict"):
        return [
            Issue("value", f"{name}: {' '.join(messages)}", plan.where)
            for name, messages in error.message_dict.items()
        ]
    return [Issue("value", message, plan.where) for message in error.messages]


def _create(plan: Plan, author: str, batch: list):
    values, resolved = dict(plan.mapped.values), plan.resolved
    common = {"author": author, "record_id": plan.target_id, "created_at": values.pop("created_at", None)}
    patient = row_of(resolved.get("patient"))
    encounter = row_of(resolved.get("encounter"))
    practitioner = resolved.get("practitioner") or ""
    if plan.kind == "patient":
        return services.register_patient(**common, batch=batch, **values)
    if plan.kind == "encounter":
        return services.add_encounter(
            **common, batch=batch, patient=patient, practitioner=practitioner, **values
        )
    if plan.kind == "observation":
        return services.add_observation(**common, batch=batch, patient=patient, encounter=encounter, **values)
    if plan.kind == "condition":
        return services.add_condition(**common, batch=batch, patient=patient, encounter=encounter, **values)
    if plan.kind == "prescription":
        return services.add_prescription(
            **common, batch=batch, patient=patient, encounter=encounter, prescriber=practitioner, **values
        )
    if plan.kind == "note":
        return services.add_note(
            **common, batch=batch, patient=patient, encounter=encounter, written_by=practitioner, **values
        )
    if plan.kind == "attachment":
        return services.add_attachment(
            **common,
            patient=patient,
            encounter=encounter,
            uploaded_by=practitioner,
            filename=values.pop("title") or "attachment",
            title=plan.mapped.values.get("title", ""),
            **values,
        )
    raise AssertionError(plan.kind)


def _update(plan: Plan, author: str):
    if plan.kind == "patient":
        return services.update_patient(patient=plan.existing, author=author, **plan.changes)
    return services.correct_record(obj=plan.existing, author=author, **plan.changes)
