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

Here the steps in order; each lives in its module: import_read (1), import_resolve with import_lookup
(2), import_write (4); import_plan holds the per-entry Plan and the ImportResult reported back.
"""

from .import_plan import ImportResult, Plan
from .import_read import authorize, read_bundle
from .import_resolve import Resolver
from .import_write import write_plans
from .outcome import FhirError, Issue, errors
from .terms import REFERENCE_ONLY_TYPES, WRITABLE_TYPES

__all__ = ["ImportResult", "Plan", "import_bundle", "writable_type"]


def import_bundle(bundle, *, author: str, user=None, max_entries: int | None = None) -> ImportResult:
    """Check and write a whole bundle, or raise FhirError (nothing written). `user` (when given) must be
    allowed to write every entry's type; the command line imports as the node operator."""
    plans = read_bundle(bundle, max_entries)
    if user is not None:
        authorize(plans, user)
    issues = [issue for plan in plans for issue in plan.warnings]
    problems = errors(issues)
    if problems:
        raise FhirError(issues, status=_status(problems))
    importer = Resolver(plans)
    importer.resolve()
    problems = errors(importer.issues)
    if problems:
        raise FhirError(importer.issues, status=_status(problems))
    write_plans(plans, author)
    return ImportResult(bundle.get("type", ""), plans)


def _status(problems: list[Issue]) -> int:
    if any(p.code == "forbidden" for p in problems):
        return 403
    if any(p.code == "conflict" for p in problems):
        return 409
    if all(p.code in {"value", "invariant", "not-found", "not-supported", "required"} for p in problems):
        return 422
    return 400


def writable_type(resource_type: str) -> bool:
    return resource_type in WRITABLE_TYPES or resource_type in REFERENCE_ONLY_TYPES
