"""Hostile input on the FHIR API, generated from the project's own OpenAPI description (/api/docs).

schemathesis is not used: its pinned dependency set would have to join requirements.txt beside this
project's pins, and the document's resources are described loosely (a `Resource` schema), so a
schema-driven generator would only produce `{}` shapes. Instead hypothesis strategies walk every
operation of the document: path parameters, query parameters of each declared name, and bodies that
are arbitrary JSON, resource-shaped dictionaries with wrong types, truncated or non-UTF-8 bytes.
Every answer must be a clear refusal (4xx with an OperationOutcome) or a success; never a 5xx; and a
refused write changes neither the records nor the ledger.
"""

from __future__ import annotations

import json
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.models import Entry
from records.fhir.tokens import issue_token
from records.models import Encounter, Observation, Patient

from . import config
from .hostile import ERROR, OUTCOME, assert_answered, assert_refused

pytestmark = pytest.mark.django_db
RESOURCE_TYPES = [
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "DocumentReference",
    "Bundle",
    "Practitioner",
    "Binary",
    "OperationOutcome",
    "",
    "patient",
    "../etc",
]
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
FIELDS = [
    "id",
    "name",
    "gender",
    "birthDate",
    "subject",
    "status",
    "code",
    "valueQuantity",
    "entry",
    "type",
    "resource",
    "request",
    "content",
    "attachment",
    "data",
    "effectiveDateTime",
    "identifier",
    "meta",
]
resource_like = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(RESOURCE_TYPES)},
    optional={name: json_values for name in FIELDS},
)
bundle_like = st.fixed_dictionaries(
    {"resourceType": st.just("Bundle"), "type": st.sampled_from(["transaction", "batch", "collection", "x"])},
    optional={
        "entry": st.lists(
            st.fixed_dictionaries(
                {},
                optional={"resource": resource_like, "request": json_values, "fullUrl": st.text(max_size=30)},
            ),
            max_size=4,
        )
    },
)
bodies = (
    resource_like.map(lambda d: json.dumps(d, default=str).encode())
    | bundle_like.map(lambda d: json.dumps(d, default=str).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | resource_like.map(lambda d: json.dumps(d).encode()[: len(json.dumps(d)) // 2])
)
path_values = st.sampled_from(
    ["00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc", "' OR 1=1 --"]
) | st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


def operations(document: dict) -> list[tuple[str, str, list[str], bool]]:
    found = []
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            names = [p["name"] for p in shared + operation.get("parameters", []) if p.get("in") == "query"]
            found.append((method.upper(), path, names, "requestBody" in operation))
    return found


@pytest.fixture
def fhir(client, make_user):
    user = make_user("clinician", username="fuzz_clinician")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user=user, name='fuzz')}"}
    document = json.loads(client.get("/api/docs").content)
    return client, headers, operations(document)


def counts() -> tuple[int, ...]:
    return (
        Entry.objects.count(),
        Patient.objects.count(),
        Encounter.objects.count(),
        Observation.objects.count(),
    )


def says(path: str) -> str:
    # The other JSON endpoints the document describes (/api/search) answer {"error": why}.
    return OUTCOME if path.startswith("/fhir") else ERROR


@settings(
    max_examples=config.FUZZ_EXAMPLES * 2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_documented_operation_refuses_hostile_input_cleanly(fhir, data):
    client, headers, ops = fhir
    method, path, query_names, has_body = data.draw(st.sampled_from(ops))
    # An id with "/" (or "..") leaves the FHIR URL space for Django's own 404 page: not FHIR's answer.
    object_id = data.draw(
        path_values.filter(lambda v: "/" not in unquote(v) and unquote(v) not in ("", ".", ".."))
    )
    url = path.replace("{id}", quote(object_id, safe=""))
    query = data.draw(
        st.dictionaries(st.sampled_from(query_names or ["_x"]), st.text(max_size=30), max_size=3)
    )
    before = counts()
    if method == "GET":
        response = client.get(url, query, **headers)
    else:
        body = data.draw(bodies)
        content_type = data.draw(st.sampled_from(["application/fhir+json", "application/json", "text/plain"]))
        call = client.post if method == "POST" else client.put
        response = call(url, data=body, content_type=content_type, **headers)
    if response.streaming:
        response.content = b"".join(response.streaming_content)
    assert_answered(response, counts, before, says=says(path), context=(method, url))


def test_the_document_lists_the_write_operations_the_fuzzer_must_reach(fhir):
    _, _, ops = fhir
    writes = {(m, p) for m, p, _, body in ops if body}
    assert ("POST", "/fhir") in writes and ("POST", "/fhir/Patient") in writes
    assert ("PUT", "/fhir/Patient/{id}") in writes and ("POST", "/fhir/DocumentReference") in writes


@pytest.mark.parametrize(
    "body",
    [
        b"{" * 100_000,  # nesting bomb
        b'{"resourceType": "Patient", "name": [' + b'{"family": "x"},' * 50_000 + b"{}]}",  # oversized
        b'{"resourceType": "Patient", "birthDate": "1990-02-30"}',
        b'{"resourceType": "Patient", "gender": {"$gt": ""}}',
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType":'
        b' "Patient", "name": [{"family": "Ok"}], "gender": "female", "birthDate": "1990-01-01"}, "request":'
        b' {"method": "POST", "url": "Patient"}}, {"resource": {"resourceType": "Observation", "status": 7},'
        # first entry valid, second not: all or nothing
        b' "request": {"method": "POST", "url": "Observation"}}]}',
        '{"resourceType": "Patient", "name": [{"family": "\ud800"}]}'.encode("utf-8", "surrogatepass"),
    ],
    ids=["nesting", "oversized", "bad-date", "operator-object", "half-valid-transaction", "lone-surrogate"],
)
def test_known_hostile_bodies(fhir, body):
    client, headers, _ = fhir
    before = counts()
    url = "/fhir" if b'"Bundle"' in body else "/fhir/Patient"
    response = client.post(url, data=body, content_type="application/fhir+json", **headers)
    assert_refused(response, counts, before, says=says(url))


@pytest.mark.parametrize("patient", ["0", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%00"])
def test_search_api_refuses_a_patient_that_is_no_uuid(fhir, patient):
    """Found by the fuzzer above: ?patient=0 was a 500 (Django's ValidationError escaped the view)."""
    client, headers, _ = fhir
    before = counts()
    response = client.get("/api/search", {"q": "fever", "patient": patient}, **headers)
    assert_refused(response, counts, before, says=ERROR, status=404)
