"""Import of a FHIR Bundle (transaction or collection): all or nothing.

1. Read: the bundle's shape, then every entry is validated with fhir.resources and mapped.
2. Resolve: urn:uuid: and Type/id references between entries, references to records already on this
   node, conditional create of patients by identifier (and by the UUID id they came with).
3. Refuse: if anything is wrong, an OperationOutcome names each problem (entry, path, reason) and
   nothing was written.
4. Write: in one database transaction, every object through records.services, so each gets its
   ledger entry like any other write; an error from a service rolls the whole bundle back.

Ids: a resource keeps its id when it is a UUID (so an export re-imports with stable references); a
transaction entry without one keeps its urn:uuid fullUrl; otherwise a new UUID. A patient known only
by another system's identifier gets an id derived from that identifier, so importing it twice finds it.
"""

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.roles import Capability, has_capability
from ledger import services as ledger_services
from ledger.models import Entry

from .. import services
from ..models import Attachment, ClinicalNote, Condition, Encounter, MedicationRequest, Observation, Patient
from .from_fhir import FROM_FHIR, Mapped, RefSpec, from_fhir
from .outcome import FhirError, Issue, errors
from .terms import (
    PATIENT_NUMBER,
    REFERENCE_ONLY_TYPES,
    WRITABLE_TYPES,
    as_uuid,
    derived_id,
    identifier_patient_id,
    practitioner_id,
)
from .validation import model_class, validate_resource

MODELS = {
    "patient": Patient,
    "encounter": Encounter,
    "observation": Observation,
    "condition": Condition,
    "prescription": MedicationRequest,
    "note": ClinicalNote,
    "attachment": Attachment,
}
# Write order: what others refer to first.
ORDER = ["patient", "encounter", "observation", "condition", "prescription", "note", "attachment"]
WRITE_CAPABILITY = {
    "patient": Capability.REGISTER_PATIENTS,
    "encounter": Capability.RECORD_ENCOUNTERS,
    "observation": Capability.RECORD_ENCOUNTERS,
    "note": Capability.RECORD_ENCOUNTERS,
    "condition": Capability.DIAGNOSE_AND_PRESCRIBE,
    "prescription": Capability.DIAGNOSE_AND_PRESCRIBE,
    "attachment": Capability.UPLOAD_ATTACHMENTS,
}
BUNDLE_TYPES = {"transaction", "collection"}
CHUNK = 500


@dataclass
class Plan:
    """One entry on its way in."""

    index: int
    where: str  # "Bundle.entry[3].resource"
    resource: dict
    mapped: Mapped
    method: str = ""  # POST or PUT in a transaction; "" in a collection
    full_url: str = ""
    url_id: uuid.UUID | None = None  # the id in a PUT's url
    if_none_exist: str = ""
    target_id: uuid.UUID | None = None
    existing: object = None  # the row this entry matched or updates
    action: str = ""  # create, match, update, unchanged, skip
    obj: object = None
    resolved: dict = field(default_factory=dict)  # ref name -> Plan | model instance | username
    changes: dict = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.mapped.kind

    @property
    def model(self):
        return MODELS.get(self.kind)

    def final_id(self):
        if self.obj is not None:
            return self.obj.pk
        if self.existing is not None:
            return self.existing.pk
        return self.target_id


@dataclass
class ImportResult:
    bundle_type: str
    plans: list[Plan]

    def count(self, action: str) -> int:
        return sum(1 for plan in self.plans if plan.action == action)

    def summary(self) -> dict:
        by_type: dict = {}
        for plan in self.plans:
            counts = by_type.setdefault(plan.mapped.resource_type, {})
            counts[plan.action] = counts.get(plan.action, 0) + 1
        return {
            "entries": len(self.plans),
            "created": self.count("create"),
            "matched": self.count("match"),
            "updated": self.count("update"),
            "unchanged": self.count("unchanged"),
            "skipped": self.count("skip"),
            "by_type": by_type,
            "warnings": [str(w) for plan in self.plans for w in plan.warnings],
        }

    def response_bundle(self) -> dict:
        """A transaction-response: one entry per request entry, in order."""
        entries = []
        for plan in self.plans:
            status = {"create": "201 Created", "skip": "200 OK"}.get(plan.action, "200 OK")
            response = {"status": status}
            if plan.model is not None:
                obj = plan.obj or plan.existing
                response["location"] = f"{plan.mapped.resource_type}/{obj.pk}/_history/{obj.version}"
                response["etag"] = f'W/"{obj.version}"'
                response["lastModified"] = (
                    obj.updated_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
                )
            if plan.warnings:
                response["outcome"] = {
                    "resourceType": "OperationOutcome",
                    "issue": [w.as_fhir() for w in plan.warnings],
                }
            entries.append({"response": response})
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def import_bundle(bundle, *, author: str, user=None, max_entries: int | None = None) -> ImportResult:
    """Check and write a whole bundle, or raise FhirError (nothing written). `user` (when given) must be
    allowed to write every entry's type; the command line imports as the node operator."""
    plans = _read(bundle, max_entries)
    if user is not None:
        _authorize(plans, user)
    issues = [issue for plan in plans for issue in plan.warnings]
    problems = errors(issues)
    if problems:
        raise FhirError(issues, status=_status(problems))
    importer = _Resolver(plans)
    importer.resolve()
    problems = errors(importer.issues)
    if problems:
        raise FhirError(importer.issues, status=_status(problems))
    _write(plans, author)
    return ImportResult(bundle.get("type", ""), plans)


def _status(problems: list[Issue]) -> int:
    if any(p.code == "forbidden" for p in problems):
        return 403
    if any(p.code == "conflict" for p in problems):
        return 409
    if all(p.code in {"value", "invariant", "not-found", "not-supported", "required"} for p in problems):
        return 422
    return 400


# ---------------------------------------------------------------------------------------------------
# 1. Read


def _read(bundle, max_entries: int | None) -> list[Plan]:
    if not isinstance(bundle, dict):
        raise FhirError([Issue("structure", "the body must be a JSON object (a Bundle)")])
    if bundle.get("resourceType") != "Bundle":
        raise FhirError(
            [
                Issue(
                    "invalid", f"expected a Bundle, got {bundle.get('resourceType')!r}", "Bundle.resourceType"
                )
            ]
        )
    issues: list[Issue] = []
    kind = bundle.get("type")
    if kind not in BUNDLE_TYPES:
        issues.append(
            Issue(
                "not-supported",
                f"only transaction and collection bundles are imported, not {kind!r}",
                "Bundle.type",
            )
        )
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError([Issue("structure", "Bundle.entry must be an array", "Bundle.entry")])
    if max_entries is not None and len(entries) > max_entries:
        raise FhirError(
            [
                Issue(
                    "too-long",
                    f"at most {max_entries} entries per bundle (got {len(entries)})",
                    "Bundle.entry",
                )
            ],
            status=413,
        )
    shell = {key: value for key, value in bundle.items() if key != "entry"}
    shell["entry"] = [
        {key: value for key, value in entry.items() if key != "resource"}
        if isinstance(entry, dict)
        else entry
        for entry in entries
    ]
    issues.extend(validate_resource(shell, "Bundle"))
    if errors(issues):
        raise FhirError(issues)
    plans = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        resource = entry.get("resource")
        if resource is None:
            issues.append(Issue("required", "every entry needs a resource", f"{where}.resource"))
            continue
        resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(resource_type, str) and model_class(resource_type) and resource_type not in FROM_FHIR:
            message = f"{resource_type} resources are not stored by this node"
            issues.append(Issue("not-supported", message, f"{where}.resource.resourceType"))
            continue
        entry_issues = validate_resource(resource, f"{where}.resource")
        if errors(entry_issues):
            issues.extend(entry_issues)
            continue
        mapped, mapping_issues = from_fhir(resource)
        prefixed = [_under(issue, f"{where}.resource") for issue in mapping_issues]
        if mapped is None:
            issues.extend(prefixed)
            continue
        plan = Plan(index, f"{where}.resource", resource, mapped, full_url=entry.get("fullUrl") or "")
        plan.warnings.extend(prefixed)
        if kind == "transaction":
            _read_request(plan, entry.get("request"), where)
        plans.append(plan)
    if errors(issues):
        raise FhirError(issues + [w for plan in plans for w in plan.warnings])
    return plans


def _under(issue: Issue, where: str) -> Issue:
    expression = f"{where}.{issue.expression}" if issue.expression else where
    return Issue(issue.code, issue.diagnostics, expression, issue.severity)


def _read_request(plan: Plan, request, where: str) -> None:
    resource_type = plan.mapped.resource_type
    if not request:
        plan.warnings.append(Issue("required", "a transaction entry needs a request", f"{where}.request"))
        return
    method, url = request.get("method"), (request.get("url") or "").strip()
    plan.method = method or ""
    if method not in {"POST", "PUT"}:
        plan.warnings.append(
            Issue("not-supported", f"only POST and PUT are imported, not {method}", f"{where}.request.method")
        )
        return
    path = url.split("?", 1)[0].rstrip("/")
    parts = path.split("/")
    if parts[0] != resource_type:
        plan.warnings.append(
            Issue("invalid", f"request.url {url!r} does not name a {resource_type}", f"{where}.request.url")
        )
        return
    if method == "PUT":
        if len(parts) != 2 or "?" in url:
            plan.warnings.append(
                Issue(
                    "not-supported",
                    "PUT needs the url Type/id (no conditional update)",
                    f"{where}.request.url",
                )
            )
            return
        plan.url_id = as_uuid(parts[1])
        if plan.url_id is None:
            plan.warnings.append(Issue("value", "ids on this node are UUIDs", f"{where}.request.url"))
        elif plan.mapped.source_id and plan.mapped.source_id != plan.url_id:
            plan.warnings.append(
                Issue("invalid", "the resource's id differs from the id in request.url", f"{plan.where}.id")
            )
    elif len(parts) != 1:
        plan.warnings.append(Issue("invalid", "POST goes to the type (e.g. Patient)", f"{where}.request.url"))
    plan.if_none_exist = request.get("ifNoneExist") or ""


def _authorize(plans: list[Plan], user) -> None:
    refused = []
    for plan in plans:
        capability = WRITE_CAPABILITY.get(plan.kind)
        if capability is not None and not has_capability(user, capability):
            refused.append(
                Issue("forbidden", f"your role may not write {plan.mapped.resource_type}", plan.where)
            )
    if refused:
        raise FhirError(refused, status=403)


# ---------------------------------------------------------------------------------------------------
# 2. Resolve


def _identifier_query(text: str) -> tuple[str, str] | None:
    """'identifier=system|value' (as in ifNoneExist or a conditional reference) -> (system, value)."""
    text = text.split("?", 1)[-1]
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if name == "identifier" and value:
            system, bar, code = unquote(value).partition("|")
            return (system, code) if bar else ("", system)
    return None


class _Resolver:
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
                tail = _type_id(plan.full_url)
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
        by_number = _fetch(Patient, "patient_number", numbers)
        by_id = _fetch(Patient, "pk", ids)
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
                query = _identifier_query(plan.if_none_exist)
                if query is None:
                    self.error("not-supported", "ifNoneExist supports identifier=system|value", plan.where)
                elif existing is None:
                    existing = _patient_by_identifier(*query)
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
        ids = [i for i in (plan.url_id, plan.mapped.source_id, _urn_uuid(plan.full_url)) if i]
        ids += [identifier_patient_id(system, value) for system, value in plan.mapped.identifiers]
        return ids

    def _new_id(self, plan: Plan) -> uuid.UUID:
        """The UUID a new record gets: the one it came with; else one derived from where it came from
        (so that importing the same source twice finds it again); else a random one."""
        if plan.url_id or plan.mapped.source_id:
            return plan.url_id or plan.mapped.source_id
        if plan.kind == "patient" and plan.mapped.identifiers:
            return identifier_patient_id(*plan.mapped.identifiers[0])
        if _urn_uuid(plan.full_url):
            return _urn_uuid(plan.full_url)
        if plan.kind == "patient":
            return uuid.uuid4()
        if plan.full_url.startswith(("http://", "https://")):
            return uuid.UUID(derived_id("source", plan.full_url.split("/_history/")[0]))
        scope = self._patient_scope(plan)
        if plan.resource.get("id") and scope:
            return uuid.UUID(derived_id("source", str(scope), plan.mapped.resource_type, plan.resource["id"]))
        return uuid.uuid4()

    def _patient_scope(self, plan: Plan) -> uuid.UUID | None:
        spec = plan.mapped.refs.get("patient")
        if spec is None:
            return None
        target = self.by_key.get(spec.reference) or self.by_key.get(_type_id(spec.reference) or "")
        if target is not None:
            return target.target_id if target.kind == "patient" else None
        type_id = _type_id(spec.reference)
        return as_uuid(type_id.split("/", 1)[1]) if type_id and type_id.startswith("Patient/") else None

    def _assign_ids(self) -> None:
        for kind in ORDER[1:]:
            plans = [plan for plan in self.plans if plan.kind == kind]
            for plan in plans:
                plan.target_id = self._new_id(plan)
            model = MODELS[kind]
            existing = _fetch(model, "pk", {plan.target_id for plan in plans})
            for plan in plans:
                if plan.target_id in existing:
                    plan.existing = existing[plan.target_id]
                    plan.action = "update" if plan.method == "PUT" else "unchanged"
        # An id already used by a record of another type keeps the ledger unambiguous by a new id.
        creating = {plan.target_id: plan for plan in self.plans if plan.model and plan.existing is None}
        for chunk in _chunks(list(creating)):
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
                plan.target_id = uuid.uuid4()
        for plan in self.plans:
            if not plan.action:
                plan.action = "skip" if plan.model is None else "create"

    def _resolve(self, plan: Plan, spec: RefSpec):
        where = f"{plan.where}.{spec.path}"
        text = spec.reference.strip()
        if "?" in text:
            return self._resolve_conditional(plan, spec, where)
        target = self.by_key.get(text) or self.by_key.get(_type_id(text) or "")
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
        type_id = _type_id(text)
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
        query = _identifier_query(spec.reference)
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
        row = _patient_by_identifier(system, value)
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
            if encounter_patient is not None and _id_of(encounter_patient) != _id_of(patient):
                self.error(
                    "invariant",
                    "the encounter belongs to another patient than this resource's subject",
                    f"{plan.where}.encounter",
                )

    def _compare_existing(self) -> None:
        for plan in self.plans:
            if plan.existing is None or plan.kind == "patient" and plan.action == "match":
                continue
            wanted = _fields(plan)
            changes = {
                name: value for name, value in wanted.items() if _differs(getattr(plan.existing, name), value)
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
                fixed = set(changes) - {
                    "given_name",
                    "family_name",
                    "sex",
                    "birth_date",
                    "birth_date_estimated",
                    "village",
                    "phone",
                }
            if fixed:
                self.error(
                    "not-supported",
                    f"{', '.join(sorted(fixed))} of a {plan.mapped.resource_type} cannot change; "
                    "record a new one instead",
                    plan.where,
                )
            plan.changes = changes
            plan.action = "update"


def _type_id(text: str) -> str | None:
    """'Patient/123', 'http://host/fhir/Patient/123/_history/2' -> 'Patient/123'."""
    parts = [part for part in text.split("?", 1)[0].split("/") if part]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha():
        return f"{parts[-2]}/{parts[-1]}"
    return None


def _urn_uuid(full_url: str) -> uuid.UUID | None:
    if full_url.startswith("urn:uuid:"):
        return as_uuid(full_url[len("urn:uuid:") :])
    return None


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _fetch(model, field_name: str, values: set) -> dict:
    found = {}
    for chunk in _chunks([v for v in values if v is not None]):
        for row in model.objects.filter(**{f"{field_name}__in": chunk}):
            found[getattr(row, field_name)] = row
    return found


def _patient_by_identifier(system: str, value: str) -> Patient | None:
    if system == PATIENT_NUMBER or not system:
        row = Patient.objects.filter(patient_number=value.strip().upper()).first()
        if row is not None or system:
            return row
    return Patient.objects.filter(pk=identifier_patient_id(system, value)).first()


def _id_of(target):
    return target.final_id() if isinstance(target, Plan) else target.pk


def _differs(current, wanted) -> bool:
    if isinstance(current, dt.datetime) and isinstance(wanted, dt.datetime):
        return current != wanted
    if current is None or wanted is None:
        return current != wanted
    if hasattr(current, "quantize"):
        return current.compare(wanted) != 0
    return current != wanted


def _fields(plan: Plan) -> dict:
    """The model fields an entry would set, to compare with an existing row."""
    values, resolved = plan.mapped.values, plan.resolved
    practitioner = resolved.get("practitioner")
    if plan.kind == "patient":
        return {
            name: values[name]
            for name in (
                "given_name",
                "family_name",
                "sex",
                "birth_date",
                "birth_date_estimated",
                "village",
                "phone",
            )
            if name in values
        }
    common = {}
    if resolved.get("patient") is not None:
        common["patient_id"] = _id_of(resolved["patient"])
    if "encounter" in plan.mapped.refs:
        common["encounter_id"] = _id_of(resolved["encounter"]) if resolved.get("encounter") else None
    if plan.kind == "encounter":
        fields = {
            "kind": values["kind"],
            "reason": values["reason"].strip(),
            "started_at": values["started_at"],
        }
        if practitioner:
            fields["practitioner"] = practitioner
        return {**common, **fields}
    if plan.kind == "observation":
        return {
            **common,
            "code": values["code"],
            "value_decimal": values["value"],
            "value_text": values["text"].strip(),
            "effective_at": values["effective_at"],
        }
    if plan.kind == "condition":
        return {
            **common,
            "icd10_code": values["icd10_code"],
            "clinical_status": values["clinical_status"],
            "onset_date": values["onset_date"],
        }
    if plan.kind == "prescription":
        fields = {
            "medication": values.get("medication", "").strip(),
            "dose": values["dose"].strip(),
            "frequency": values["frequency"].strip(),
            "duration_days": values["duration_days"],
            "status": values["status"],
        }
        if practitioner:
            fields["prescriber"] = practitioner
        return {**common, **fields}
    if plan.kind == "note":
        return {**common, "text": values.get("text", "").strip()}
    if plan.kind == "attachment":
        return {**common, "sha256": hashlib.sha256(values.get("content", b"")).hexdigest()}
    return {}


# ---------------------------------------------------------------------------------------------------
# 4. Write


def _write(plans: list[Plan], author: str) -> None:
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
                        services.merge_patients(keep=_row(merged_into), duplicate=plan.obj, author=author)
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


def _row(target):
    if isinstance(target, Plan):
        return target.obj or target.existing
    return target


def _create(plan: Plan, author: str, batch: list):
    values, resolved = dict(plan.mapped.values), plan.resolved
    common = {"author": author, "record_id": plan.target_id, "created_at": values.pop("created_at", None)}
    patient = _row(resolved.get("patient"))
    encounter = _row(resolved.get("encounter"))
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


def writable_type(resource_type: str) -> bool:
    return resource_type in WRITABLE_TYPES or resource_type in REFERENCE_ONLY_TYPES
