"""Access control, table-driven from the URL configuration: every pattern x every role x GET/POST.

The patterns come from django.urls.get_resolver(), not from a list kept by hand; the expected outcomes
live in access_table.py. A pattern without a row there (or a row without a pattern) fails.
"""

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import User
from ledger.selectors import self_node_id
from records import services as record_services
from records.models import Attachment
from tests.records import factories

from .access_table import EXPECTED, ROLES

# Extra query strings a URL needs to reach its role check (and not stop at argument validation).
QUERY = {"fhir:export": {"_type": "Patient"}}
MISSING = 999_999_999  # an id no object has


def url_patterns(patterns=None, namespace=None):
    """(name, pattern) for every URL pattern reachable from the root URLconf."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from url_patterns(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern):
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            yield name or f"<unnamed {entry.pattern}>", entry


def test_every_url_pattern_is_in_the_table():
    names = [name for name, _pattern in url_patterns()]
    missing = sorted(set(names) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(names))
    assert not missing, f"add these URL patterns to tests/siliconhealth/access_table.py: {missing}"
    assert not stale, f"these rows of access_table.py name no URL pattern any more: {stale}"
    assert len(names) == len(set(names)), "two URL patterns share a name: the table cannot tell them apart"


@pytest.fixture
def objects(db):
    patient = factories.patient()
    attachment = record_services.add_attachment(
        patient=patient, author="t", title="x", content=_png(), media_type="image/png", filename="x.png"
    )
    Attachment.objects.filter(pk=attachment.pk).update(watermark_status=Attachment.WatermarkStatus.MARKED)
    return {
        "patient_id": patient.pk,
        "object_id": patient.pk,
        "attachment_id": attachment.pk,
        "resource_type": "Patient",
        "origin": self_node_id(),
        "worker": "no-such-rig",
        "pk": MISSING,
        "conflict_id": MISSING,
        "run_id": MISSING,
    }


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 90).save(buffer, format="PNG")
    return buffer.getvalue()


def _url(name: str, pattern: URLPattern, objects: dict) -> str:
    converters = getattr(pattern.pattern, "converters", {})
    unknown = sorted(set(converters) - set(objects))
    assert not unknown, f"{name}: give the access-control test a value for URL parameters {unknown}"
    kwargs = {param: objects[param] for param in converters}
    return reverse(name, kwargs=kwargs)


def _outcome(response) -> object:
    login_url = resolve_url(settings.LOGIN_URL)
    if response.status_code in (301, 302) and response.get("Location", "").startswith(login_url):
        return "login"
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code in (401, 403, 404, 405):
        return response.status_code
    return "in"


def _client(role: str) -> Client:
    client = Client(raise_request_exception=False)
    if role != "anon":
        user, _ = User.objects.get_or_create(username=f"ac_{role}", defaults={"role": role})
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_url_refuses_and_admits_as_the_table_says(name, objects):
    patterns = dict(url_patterns())
    if name not in patterns:
        pytest.fail(f"{name} is in access_table.py but no URL pattern has that name")
    url = _url(name, patterns[name], objects)
    found, expected = {}, {}
    for method in ("GET", "POST"):
        for role in ROLES:
            client = _client(role)
            send = client.get if method == "GET" else client.post
            response = send(url, QUERY.get(name, {}))
            found[method, role] = _outcome(response)
            expected[method, role] = EXPECTED[name][method][role]
    wrong = {key: (found[key], expected[key]) for key in found if found[key] != expected[key]}
    assert not wrong, f"{name} ({url}): (found, expected) by (method, role): {wrong}"
