"""Structural validation with fhir.resources (R4B models, pinned in requirements), in and out.

Errors come back as Issues whose expression is a FHIRPath-like location, e.g.
"Bundle.entry[2].resource.birthDate".
"""

from functools import cache

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from .outcome import Issue


@cache
def model_class(resource_type: str):
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None


def _location(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = "resourceType" if part == "resource_type" else str(part)
        if "[" in name or " " in name:  # pydantic's internal validator names, not elements
            continue
        path += f".{name}" if path else name
    return path


def _message(error: dict) -> str:
    message = error.get("msg", "invalid")
    if error.get("type") == "extra_forbidden":
        return "unknown element (not part of FHIR R4)"
    if error.get("type") == "missing":
        return "required element is missing"
    return message.removeprefix("Value error, ")


def _code(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing" or "is required" in error.get("msg", ""):
        return "required"
    if kind == "extra_forbidden":
        return "structure"
    return "value"


def validate_resource(resource, where: str, expected_type: str | None = None) -> list[Issue]:
    """Issues with a resource (a dict from the JSON), located under `where` (e.g. "Bundle.entry[0].resource"
    or "" for a resource on its own, whose paths then start with its type)."""
    if not isinstance(resource, dict):
        return [Issue("structure", "a resource must be a JSON object", where or "")]
    resource_type = resource.get("resourceType")
    base = where or (resource_type if isinstance(resource_type, str) else "Resource")
    if not isinstance(resource_type, str) or not resource_type:
        return [Issue("required", "resourceType is missing", f"{base}.resourceType")]
    if expected_type and resource_type != expected_type:
        return [
            Issue("invalid", f"expected a {expected_type}, got a {resource_type}", f"{base}.resourceType")
        ]
    cls = model_class(resource_type)
    if cls is None:
        return [
            Issue("not-supported", f"{resource_type!r} is not an R4 resource type", f"{base}.resourceType")
        ]
    try:
        cls.model_validate(resource)
    except pydantic.ValidationError as error:
        issues = []
        for item in error.errors():
            location = _location(item.get("loc", ()))
            issues.append(Issue(_code(item), _message(item), f"{base}.{location}" if location else base))
        return issues
    except (TypeError, ValueError) as error:  # a validator that raised outside pydantic's wrapping
        return [Issue("value", str(error), base)]
    return []


class InvalidOutput(RuntimeError):
    """A resource this node produced failed validation: a bug, never the user's fault."""


def check_output(resource: dict) -> dict:
    issues = validate_resource(resource, "")
    if issues:
        raise InvalidOutput("; ".join(str(issue) for issue in issues))
    return resource
