"""Step 2 of a bundle import: references between entries and to rows on this node, conditional
create of patients by identifier, the id each new record gets, and how each entry compares with an
existing row (create, match, update, unchanged or skip). Reads the database, writes nothing."""

import uuid

from ledger.models import Entry

from .. import services
from ..ids import uuid7
from ..models import Encounter, Patient
from .from_fhir import RefSpec
from .import_lookup import chunks, fetch_by, identifier_query, patient_by_identifier, ref_type_id, urn_uuid
from .import_plan import MODELS, ORDER, PATIENT_FIELDS, Plan, differs, id_of, wanted_fields
from .outcome import Issue
from .terms import PATIENT_NUMBER, as_uuid, derived_id, identifier_patient_id, practitioner_id


class Resolver:
    def __init__(self, plans: list[Plan]):
        self.plans = plans
        self.issues: list[Issue] = [w for plan in plans for w in plan.warnings]
        self.by_key: dict[str, Plan] = {}
        self.practitioners: dict[str, str] | None = None

    def error(self, code: str, message: str, where: str) -> None:
        self.issues.append(Issue(code, message, where))

    def resolve(self) -> None:
        self._index()
        self._match_patients()
        self._assign_ids()
        for plan in self.plans:
            for name, spec in plan.mapped.refs.items():
                if spec is not None:
                    plan.resolved[name] = self._resolve(plan, spec)
        self._check_consistency()
        self._compare_existing()

    def _index(self) -> None:
        for plan in self.plans:
            keys = set()
            if plan.full_url:
                keys.add(plan.full_url)
                tail = ref_type_id(plan.full_url)
                if tail:
                    keys.add(tail)
            if plan.resource.get("id"):
                keys.add(f"{plan.mapped.resource_type}/{plan.resource['id']}")
            if plan.url_id:
                keys.add(f"{plan.mapped.resource_type}/{plan.url_id}")
            for key in keys:
                other = self.by_key.get(key)
                if other is not None and other is not plan:
                    if plan.kind in {"practitioner", "skip"} and other.resource == plan.resource:
                        continue  # the same practitioner (or node) repeated: harmless, never stored
                    self.error("duplicate", f"{key} is also entry {other.index}", plan.where)
                self.by_key[key] = plan

    # Patients: conditional create by identifier (and by the id they came with).
    def _match_patients(self) -> None:
        patients = [plan for plan in self.plans if plan.kind == "patient"]
        numbers = {
            p.mapped.values["patient_number"] for p in patients if p.mapped.values.get("patient_number")
        }
        ids = set()
        for plan in patients:
            ids.update(self._patient_id_candidates(plan))
        by_number = fetch_by(Patient, "patient_number", numbers)
        by_id = fetch_by(Patient, "pk", ids)
        for plan in patients:
            existing = None
            number = plan.mapped.values.get("patient_number")
            if plan.method == "PUT":  # an update names its patient by id, and only by id
                existing = by_id.get(plan.url_id)
                other = by_number.get(number)
                if other is not None and (existing is None or other.pk != existing.pk):
                    self.error("conflict", f"patient number {number} belongs to another patient", plan.where)
            else:
                if number and number in by_number:
                    existing = by_number[number]
                for candidate in self._patient_id_candidates(plan):
                    if existing is None and candidate in by_id:
                        existing = by_id[candidate]
            if plan.if_none_exist:
                query = identifier_query(plan.if_none_exist)
                if query is None:
                    self.error("not-supported", "ifNoneExist supports identifier=system|value", plan.where)
                elif existing is None:
                    existing = patient_by_identifier(*query)
            if existing is not None:
                plan.existing = existing
                plan.action = "update" if plan.method == "PUT" else "match"
                if plan.method != "PUT":
                    plan.warnings.append(
                        Issue(
                            "informational",
                            f"matched patient {existing.patient_number}; the existing record was kept",
                            plan.where,
                            severity="information",
                        )
                    )
            plan.target_id = existing.pk if existing else self._new_id(plan)

    def _patient_id_candidates(self, plan: Plan) -> list[uuid.UUID]:
        ids = [i for i in (plan.url_id, plan.mapped.source_id, urn_uuid(plan.full_url)) if i]
        ids += [identifier_patient_id(system, value) for system, value in plan.mapped.identifiers]
        return ids

    def _new_id(self, plan: Plan) -> uuid.UUID:
        """The UUID a new record gets: the one it came with; else one derived from where it came from
        (so that importing the same source twice finds it again); else a new time-ordered one, as a record
        made here gets."""
        if plan.url_id or plan.mapped.source_id:
            return plan.url_id or plan.mapped.source_id
        if plan.kind == "patient" and plan.mapped.identifiers:
            return identifier_patient_id(*plan.mapped.identifiers[0])
        if urn_uuid(plan.full_url):
            return urn_uuid(plan.full_url)
        if plan.kind == "patient":
            return uuid7()
        if plan.full_url.startswith(("http://", "https://")):
            return uuid.UUID(derived_id("source", plan.full_url.split("/_history/")[0]))
        scope = self._patient_scope(plan)
        if plan.resource.get("id") and scope:
            return uuid.UUID(derived_id("source", str(scope), plan.mapped.resource_type, plan.resource["id"]))
        return uuid7()

    def _patient_scope(self, plan: Plan) -> uuid.UUID | None:
        spec = plan.mapped.refs.get("patient")
        if spec is None:
            return None
        target = self.by_key.get(spec.reference) or self.by_key.get(ref_type_id(spec.reference) or "")
        if target is not None:
            return target.target_id if target.kind == "patient" else None
        type_id = ref_type_id(spec.reference)
        return as_uuid(type_id.split("/", 1)[1]) if type_id and type_id.startswith("Patient/") else None

    def _assign_ids(self) -> None:
        for kind in ORDER[1:]:
            plans = [plan for plan in self.plans if plan.kind == kind]
            for plan in plans:
                plan.target_id = self._new_id(plan)
            model = MODELS[kind]
            existing = fetch_by(model, "pk", {plan.target_id for plan in plans})
            for plan in plans:
                if plan.target_id in existing:
                    plan.existing = existing[plan.target_id]
                    plan.action = "update" if plan.method == "PUT" else "unchanged"
        # An id already used by a record of another type keeps the ledger unambiguous by a new id.
        creating = {plan.target_id: plan for plan in self.plans if plan.model and plan.existing is None}
        for chunk in chunks(list(creating)):
            for object_id, object_type in Entry.objects.filter(object_id__in=chunk).values_list(
                "object_id", "object_type"
            ):
                plan = creating[object_id]
                plan.warnings.append(
                    Issue(
                        "informational",
                        f"id {object_id} belongs to a {object_type} here; this resource gets a new id",
                        f"{plan.where}.id",
                        severity="warning",
                    )
                )
                plan.target_id = uuid7()
        for plan in self.plans:
            if not plan.action:
                plan.action = "skip" if plan.model is None else "create"

    def _resolve(self, plan: Plan, spec: RefSpec):
        where = f"{plan.where}.{spec.path}"
        text = spec.reference.strip()
        if "?" in text:
            return self._resolve_conditional(plan, spec, where)
        target = self.by_key.get(text) or self.by_key.get(ref_type_id(text) or "")
        if target is not None:
            if target.mapped.resource_type not in spec.types:
                self.error(
                    "invalid",
                    f"{text} is a {target.mapped.resource_type}, expected a {' or '.join(spec.types)}",
                    where,
                )
                return None
            if target.kind == "practitioner":
                return target.mapped.values.get("username") or spec.display
            return target
        if text.startswith("urn:"):
            self.error("not-found", f"{text} is not the fullUrl of any entry in this bundle", where)
            return None
        type_id = ref_type_id(text)
        if type_id is None:
            self.error("invalid", f"{text!r} is not a reference this node can resolve", where)
            return None
        resource_type, raw_id = type_id.split("/", 1)
        if resource_type not in spec.types:
            self.error("invalid", f"{text} is a {resource_type}, expected a {' or '.join(spec.types)}", where)
            return None
        if resource_type == "Practitioner":
            username = self._practitioner_usernames().get(raw_id) or spec.display
            if not username:
                self.error("not-found", f"{text} is not in this bundle and not a user of this node", where)
            return username or None
        model = {"Patient": Patient, "Encounter": Encounter}.get(resource_type)
        object_id = as_uuid(raw_id)
        row = model.objects.filter(pk=object_id).first() if model and object_id else None
        if row is None:
            self.error("not-found", f"{text} is neither in this bundle nor on this node", where)
        return row

    def _resolve_conditional(self, plan: Plan, spec: RefSpec, where: str):
        resource_type = spec.reference.split("?", 1)[0]
        query = identifier_query(spec.reference)
        if resource_type != "Patient" or query is None or "Patient" not in spec.types:
            self.error(
                "not-supported", "conditional references work for Patient?identifier=system|value", where
            )
            return None
        system, value = query
        for other in self.plans:
            if other.kind == "patient" and (
                (system, value) in other.mapped.identifiers
                or (system == PATIENT_NUMBER and other.mapped.values.get("patient_number") == value.upper())
            ):
                return other
        row = patient_by_identifier(system, value)
        if row is None:
            self.error("not-found", f"no patient has identifier {system}|{value}", where)
        return row

    def _practitioner_usernames(self) -> dict[str, str]:
        if self.practitioners is None:
            from accounts.models import User

            self.practitioners = {
                practitioner_id(name): name for name in User.objects.values_list("username", flat=True)
            }
        return self.practitioners

    def _check_consistency(self) -> None:
        for plan in self.plans:
            patient, encounter = plan.resolved.get("patient"), plan.resolved.get("encounter")
            if patient is None or encounter is None:
                continue
            encounter_patient = (
                encounter.resolved.get("patient") if isinstance(encounter, Plan) else encounter.patient
            )
            if encounter_patient is not None and id_of(encounter_patient) != id_of(patient):
                self.error(
                    "invariant",
                    "the encounter belongs to another patient than this resource's subject",
                    f"{plan.where}.encounter",
                )

    def _compare_existing(self) -> None:
        for plan in self.plans:
            if plan.existing is None or plan.kind == "patient" and plan.action == "match":
                continue
            wanted = wanted_fields(plan)
            changes = {
                name: value for name, value in wanted.items() if differs(getattr(plan.existing, name), value)
            }
            if not changes:
                plan.action = "unchanged"
                continue
            if plan.method != "PUT":
                self.error(
                    "conflict",
                    f"{plan.mapped.resource_type}/{plan.existing.pk} exists with other content "
                    f"({', '.join(sorted(changes))}); send it with PUT to change it",
                    plan.where,
                )
                continue
            fixed = set(changes) - services._CORRECTABLE.get(plan.model, set())
            if plan.kind == "patient":
                fixed = set(changes) - set(PATIENT_FIELDS)
            if fixed:
                self.error(
                    "not-supported",
                    f"{', '.join(sorted(fixed))} of a {plan.mapped.resource_type} cannot change; "
                    "record a new one instead",
                    plan.where,
                )
            plan.changes = changes
            plan.action = "update"
