"""The OpenAPI 3 description of the FHIR API (GET /api/docs), generated from the tables the server
runs on (capability.INTERACTIONS, selectors.SEARCH_PARAMS), so the two cannot drift apart."""

from .capability import INTERACTIONS
from .selectors import DEFAULT_COUNT, MAX_COUNT, SEARCH_PARAMS

FHIR_JSON = "application/fhir+json"


def _content(schema: str) -> dict:
    return {FHIR_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _responses(ok_status: str, ok_schema: str, *extra: str) -> dict:
    responses = {ok_status: {"description": "OK", "content": _content(ok_schema)}}
    descriptions = {
        "400": "Malformed request or resource: an OperationOutcome names each problem",
        "401": "No valid token or session",
        "403": "The user's role may not do this",
        "404": "No such resource",
        "406": "Only JSON (application/fhir+json) is served",
        "409": "Conflicts with a record already on this node",
        "413": "The body is larger than the limit",
        "415": "The body must be application/fhir+json",
        "422": "The resource breaks a clinical rule (a value out of range, an unknown code...)",
    }
    for status in ("401", "403", *extra):
        responses[status] = {"description": descriptions[status], "content": _content("OperationOutcome")}
    return responses


def _search_parameters(resource_type: str) -> list[dict]:
    params = [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "description": f"{p.type}: {p.documentation}",
            "schema": {"type": "string"},
        }
        for p in SEARCH_PARAMS.get(resource_type, [])
    ]
    params += [
        {
            "name": "_count",
            "in": "query",
            "required": False,
            "description": f"page size (default {DEFAULT_COUNT}, at most {MAX_COUNT})",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        },
        {
            "name": "_offset",
            "in": "query",
            "required": False,
            "description": "entries to skip (see Bundle.link next)",
            "schema": {"type": "integer", "minimum": 0},
        },
    ]
    return params


ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def routes() -> list[tuple[str, str, dict]]:
    """(path, method, operation) for every endpoint."""
    table = [
        (
            "/fhir/metadata",
            "get",
            {
                "summary": "CapabilityStatement: what this server does",
                "security": [],
                "responses": {"200": {"description": "OK", "content": _content("Resource")}},
            },
        ),
        (
            "/fhir",
            "post",
            {
                "summary": "Import a transaction or collection Bundle, all or nothing",
                "requestBody": {"required": True, "content": _content("Bundle")},
                "responses": _responses("200", "Bundle", "400", "409", "413", "415", "422"),
            },
        ),
        (
            "/fhir/$export",
            "get",
            {
                "summary": "Stream every resource of one type as NDJSON (one resource a line)",
                "parameters": [
                    {"name": "_type", "in": "query", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "NDJSON",
                        "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}},
                    },
                    **{k: v for k, v in _responses("200", "Bundle", "400").items() if k != "200"},
                },
            },
        ),
        (
            "/fhir/Patient/{id}/$everything",
            "get",
            {
                "summary": "Everything about one patient, as a searchset Bundle",
                "parameters": [
                    ID_PARAM,
                    {
                        "name": "_revinclude",
                        "in": "query",
                        "required": False,
                        "description": "Provenance:target adds the ledger's Provenance",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": _responses("200", "Bundle", "404"),
            },
        ),
    ]
    for resource_type, interactions in INTERACTIONS.items():
        collection, instance = f"/fhir/{resource_type}", f"/fhir/{resource_type}/{{id}}"
        if "search-type" in interactions:
            table.append(
                (
                    collection,
                    "get",
                    {
                        "summary": f"Search {resource_type}",
                        "parameters": _search_parameters(resource_type),
                        "responses": _responses("200", "Bundle", "400"),
                    },
                )
            )
        if "create" in interactions:
            table.append(
                (
                    collection,
                    "post",
                    {
                        "summary": f"Create a {resource_type}",
                        "requestBody": {"required": True, "content": _content("Resource")},
                        "responses": {
                            **_responses("201", "Resource", "400", "409", "413", "415", "422"),
                            "200": {
                                "description": "Matched an existing record (conditional create)",
                                "content": _content("Resource"),
                            },
                        },
                    },
                )
            )
        if "read" in interactions:
            table.append(
                (
                    instance,
                    "get",
                    {
                        "summary": f"Read a {resource_type}",
                        "parameters": [ID_PARAM],
                        "responses": _responses("200", "Resource", "404"),
                    },
                )
            )
        if "update" in interactions:
            table.append(
                (
                    instance,
                    "put",
                    {
                        "summary": f"Update (correct) a {resource_type}; creates it with this id if absent",
                        "parameters": [ID_PARAM],
                        "requestBody": {"required": True, "content": _content("Resource")},
                        "responses": {
                            **_responses("200", "Resource", "400", "409", "413", "415", "422"),
                            "201": {"description": "Created", "content": _content("Resource")},
                        },
                    },
                )
            )
    return table


def document(base_url: str = "") -> dict:
    from records.search import openapi as search_openapi  # the clinic's other JSON endpoint

    paths: dict = {}
    for path, method, operation in routes() + search_openapi.routes():
        operation = {
            "operationId": f"{method}{path}".replace("/", "_").replace("{", "").replace("}", ""),
            "tags": [path.split("/")[2] if path.count("/") > 1 else "system"],
            **operation,
        }
        paths.setdefault(path, {})[method] = operation
    resource_schema = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string"}, "id": {"type": "string"}},
        "additionalProperties": True,
        "description": "A FHIR R4 resource (https://hl7.org/fhir/R4/)",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SiliconHealth FHIR R4 API",
            "version": "1",
            "description": "HL7 FHIR R4 (JSON only) for a SiliconHealth node: the subset OpenMRS FHIR2, "
            "OpenSRP 2 and DHIS2's FHIR gateway use. Every write goes through the node's ledger. "
            "Errors are OperationOutcomes naming each problem (expression and diagnostics).",
        },
        "servers": [{"url": base_url or "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "python manage.py users token USERNAME",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
            "schemas": {
                "Resource": resource_schema,
                "Bundle": {**resource_schema, "description": "A FHIR R4 Bundle"},
                "OperationOutcome": {**resource_schema, "description": "A FHIR R4 OperationOutcome"},
                **search_openapi.schemas(),
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
