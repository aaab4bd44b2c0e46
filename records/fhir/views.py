"""The FHIR R4 REST API under /fhir/ (JSON only). Thin: authentication, content negotiation and
HTTP shapes here; reads in records.fhir.selectors, writes through records.fhir.importer (which
writes through records.services and the ledger)."""

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from accounts.roles import Capability, has_capability
from audit import access as access_log

from . import capability, exporter, jsonio, openapi, selectors
from .importer import import_bundle
from .outcome import FhirError, Issue, operation_outcome
from .terms import WRITABLE_TYPES
from .to_fhir import TO_FHIR
from .tokens import user_for_token

FHIR_JSON = "application/fhir+json"
JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}
ACCEPTABLE = ("application/fhir+json", "application/json", "application/json+fhir", "*/*", "application/*")
FORMATS = {"json", "application/json", "application/fhir+json"}
MAX_BODY_BYTES = getattr(settings, "FHIR_MAX_BODY_BYTES", 10 * 1024 * 1024)
MAX_BUNDLE_ENTRIES = getattr(settings, "FHIR_MAX_BUNDLE_ENTRIES", 20000)


def fhir_response(data: dict, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(jsonio.dumps(data), status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def outcome_response(issues: list[Issue], status: int) -> HttpResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="fhir"'} if status == 401 else None
    return fhir_response(operation_outcome(issues), status, headers)


def _authenticate(request) -> None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise FhirError([Issue("login", "use Authorization: Bearer <token>")], status=401)
        user = user_for_token(token.strip())
        if user is None:
            raise FhirError(
                [Issue("login", "the token is unknown, revoked or its user inactive")], status=401
            )
        request.user = user
        return
    if not request.user.is_authenticated:
        raise FhirError([Issue("login", "sign in, or send Authorization: Bearer <token>")], status=401)
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        # A browser session must carry its CSRF token; bearer tokens are not sent by browsers.
        refused = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if refused is not None:
            raise FhirError([Issue("security", "CSRF check failed")], status=403)


def _negotiate(request) -> None:
    requested = request.GET.get("_format")
    if requested and requested not in FORMATS:
        raise FhirError([Issue("not-supported", "only JSON is served (_format=json)")], status=406)
    accept = request.META.get("HTTP_ACCEPT", "")
    if accept and not any(kind in accept for kind in (*ACCEPTABLE, "application/fhir+ndjson")):
        raise FhirError([Issue("not-supported", f"only {FHIR_JSON} is served")], status=406)


def api(*methods: str, public: bool = False):
    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    response = outcome_response(
                        [Issue("not-supported", f"{request.method} is not allowed here")], 405
                    )
                    response["Allow"] = ", ".join(methods)
                    return response
                _negotiate(request)
                if not public:
                    _authenticate(request)
                return view(request, *args, **kwargs)
            except FhirError as error:
                return outcome_response(error.issues, error.status)
            except PermissionDenied as error:
                return outcome_response([Issue("forbidden", str(error) or "your role may not do this")], 403)
            except ObjectDoesNotExist as error:
                return outcome_response([Issue("not-found", str(error) or "not found")], 404)
            except ValidationError as error:
                return outcome_response([Issue("value", m) for m in error.messages], 422)

        return wrapper

    return decorator


def _body(request):
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type not in JSON_TYPES:
        raise FhirError(
            [Issue("not-supported", f"send {FHIR_JSON}, not {content_type or 'nothing'}")], status=415
        )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_large = FhirError(
        [Issue("too-long", f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")], status=413
    )
    if declared > MAX_BODY_BYTES:
        raise too_large
    data = request.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    if not data.strip():
        raise FhirError([Issue("required", "the body is empty")], status=400)
    return jsonio.loads(data)


def base_url(request) -> str:
    return request.build_absolute_uri(reverse("fhir:base")).rstrip("/")


# ---------------------------------------------------------------------------------------------------


@api("GET", public=True)
def metadata(request):
    return fhir_response(capability.capability_statement(base_url(request)))


@api("GET", public=True)
def openapi_document(request):
    response = HttpResponse(jsonio.dumps(openapi.document()), content_type="application/json; charset=utf-8")
    return response


@api("POST")
def base(request):
    bundle = _body(request)
    result = import_bundle(
        bundle, author=request.user.username, user=request.user, max_entries=MAX_BUNDLE_ENTRIES
    )
    return fhir_response(result.response_bundle())


def _single(resource_type: str, issues: list[Issue]) -> list[Issue]:
    """Issues about a one-entry transaction, located in the resource that was sent."""
    prefix = "Bundle.entry[0].resource"
    return [
        Issue(i.code, i.diagnostics, i.expression.replace(prefix, resource_type, 1), i.severity)
        for i in issues
    ]


def _write_one(request, resource_type: str, resource, method: str, url: str):
    if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
        found = resource.get("resourceType") if isinstance(resource, dict) else type(resource).__name__
        raise FhirError(
            [Issue("invalid", f"expected a {resource_type}, got {found!r}", f"{resource_type}.resourceType")]
        )
    entry = {"resource": resource, "request": {"method": method, "url": url}}
    if request.META.get("HTTP_IF_NONE_EXIST"):
        entry["request"]["ifNoneExist"] = request.META["HTTP_IF_NONE_EXIST"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    try:
        result = import_bundle(bundle, author=request.user.username, user=request.user)
    except FhirError as error:
        raise FhirError(_single(resource_type, error.issues), error.status) from None
    plan = result.plans[0]
    row = plan.obj or plan.existing
    row.refresh_from_db()
    status = 201 if plan.action == "create" else 200
    headers = {
        "Location": f"{base_url(request)}/{resource_type}/{row.pk}/_history/{row.version}",
        "ETag": f'W/"{row.version}"',
    }
    return fhir_response(
        TO_FHIR[type(row)](row, exporter.export_context(embed_attachments=False)), status, headers
    )


def _page_links(request, resource_type: str, page: selectors.Page) -> list[dict]:
    params = [(k, v) for k in request.GET for v in request.GET.getlist(k) if k not in {"_offset", "_count"}]
    url = f"{base_url(request)}/{resource_type}"

    def link(relation: str, offset: int) -> dict:
        query = urlencode([*params, ("_count", page.count), ("_offset", offset)])
        return {"relation": relation, "url": f"{url}?{query}"}

    links = [link("self", page.offset), link("first", 0)]
    if page.count and page.offset + page.count < page.total:
        links.append(link("next", page.offset + page.count))
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    return links


@api("GET", "POST")
def type_endpoint(request, resource_type: str):
    if request.method == "POST":
        if resource_type not in WRITABLE_TYPES:
            raise FhirError([Issue("not-supported", f"{resource_type} cannot be created here")], status=405)
        return _write_one(request, resource_type, _body(request), "POST", resource_type)
    page = selectors.search(user=request.user, resource_type=resource_type, params=request.GET)
    access_log.record_fhir_access(
        request, interaction="search-type", resource_type=resource_type, resources=page.resources
    )
    root = base_url(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": _page_links(request, resource_type, page),
        "entry": [
            {
                "fullUrl": f"{root}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in page.resources
        ],
    }
    return fhir_response(bundle)


@api("GET", "PUT")
def instance(request, resource_type: str, object_id: str):
    if request.method == "PUT":
        if resource_type not in WRITABLE_TYPES or resource_type == "DocumentReference":
            raise FhirError([Issue("not-supported", f"{resource_type} cannot be updated here")], status=405)
        resource = _body(request)
        if isinstance(resource, dict) and resource.get("id") != object_id:
            raise FhirError(
                [Issue("invalid", "the resource's id must equal the id in the URL", f"{resource_type}.id")]
            )
        return _write_one(request, resource_type, resource, "PUT", f"{resource_type}/{object_id}")
    resource = selectors.read(user=request.user, resource_type=resource_type, object_id=object_id)
    access_log.record_fhir_access(
        request, interaction="read", resource_type=resource_type, object_id=object_id, resources=[resource]
    )
    headers = {}
    if "meta" in resource:
        headers["ETag"] = f'W/"{resource["meta"]["versionId"]}"'
        headers["Last-Modified"] = resource["meta"]["lastUpdated"]
    return fhir_response(resource, headers=headers)


@api("GET")
def everything(request, object_id: str):
    patient = selectors.get_patient(user=request.user, object_id=object_id)
    if not has_capability(request.user, Capability.VIEW_CLINICAL):
        raise PermissionDenied("your role may not read clinical records")
    provenance = request.GET.get("_revinclude") == "Provenance:target"
    root = base_url(request)
    ctx = exporter.export_context(base_url=root, embed_attachments=False)
    resources = exporter.patient_export(patient, ctx, provenance=provenance)
    access_log.record_fhir_access(
        request,
        interaction="everything",
        resource_type="Patient",
        object_id=str(patient.pk),
        resources=[{"resourceType": "Patient", "id": str(patient.pk)}],
    )
    chunks = exporter.bundle_chunks(resources, bundle_type="searchset", base_url=root, search_mode=True)
    return StreamingHttpResponse(chunks, content_type=f"{FHIR_JSON}; charset=utf-8")


@api("GET")
def bulk_export(request):
    """Every resource of one type, one a line (application/fhir+ndjson), streamed."""
    resource_type = request.GET.get("_type", "")
    if resource_type not in {"Patient", *selectors.SEARCH_MODELS}:
        raise FhirError(
            [Issue("value", "give _type=Patient, Encounter, Observation, ...", "_type")], status=400
        )
    selectors.require_read(request.user, resource_type)
    access_log.record_bulk_export(
        user=request.user, resource_type=resource_type, request=request, detail={"interaction": "$export"}
    )
    ctx = exporter.export_context(base_url=base_url(request), embed_attachments=False)

    def lines():
        for model in selectors.SEARCH_MODELS[resource_type]:
            for resource in exporter.record_resources(model, ctx):
                yield jsonio.dumps(resource) + "\n"

    return StreamingHttpResponse(lines(), content_type="application/fhir+ndjson")
