"""Step 1 of a bundle import: the bundle's shape, every entry validated and mapped into a Plan, the
transaction request of each entry, and the user's right to write each type. Nothing touches the database."""

from accounts.roles import has_capability

from .from_fhir import FROM_FHIR, from_fhir
from .import_plan import WRITE_CAPABILITY, Plan
from .outcome import FhirError, Issue, errors
from .terms import as_uuid
from .validation import model_class, validate_resource

BUNDLE_TYPES = {"transaction", "collection"}


def read_bundle(bundle, max_entries: int | None) -> list[Plan]:
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


def authorize(plans: list[Plan], user) -> None:
    refused = []
    for plan in plans:
        capability = WRITE_CAPABILITY.get(plan.kind)
        if capability is not None and not has_capability(user, capability):
            refused.append(
                Issue("forbidden", f"your role may not write {plan.mapped.resource_type}", plan.where)
            )
    if refused:
        raise FhirError(refused, status=403)
