"""Hostile input on /sync/ and on the bundle importers (`sync import` USB bundles, `fhir import` Bundles).

The sync requests are signed by a registered peer, so the fuzzed bodies get past authentication and
reach the handlers; unsigned and mangled-header requests are fuzzed too. Every answer is 200 or a 4xx
with {"error": ...}; never a 5xx; a refusal changes nothing. Bundles: random bytes, a real bundle with
bytes flipped, cut short or padded; each refused whole with a clear error and nothing stored.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.models import Checkpoint, Entry
from records.models import Encounter, Patient
from sync import wire
from sync.models import ForkEvidence

from ..sync.test_bundles_and_commands import bundle_file, run
from ..sync.test_endpoints import Caller, as_batch
from . import config
from .hostile import ERROR, assert_answered

pytestmark = pytest.mark.django_db
FUZZ = settings(
    max_examples=config.FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
KEYS = [
    "have",
    "origin",
    "from",
    "to",
    "batches",
    "batch",
    "entries",
    "checkpoint",
    "public_key",
    "tier",
    "consistency",
    "proofs",
    "patients",
    "max_entries",
    "sizes",
]
documents = json_values | st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)


def snapshot() -> tuple[int, ...]:
    return (
        Entry.objects.count(),
        Checkpoint.objects.count(),
        Patient.objects.count(),
        Encounter.objects.count(),
    )


def check(response, before: tuple, endpoint: str) -> None:
    assert_answered(response, snapshot, before, says=ERROR, success=(200,), context=(endpoint,))
    if endpoint == "push":  # a fuzzed push can never carry a verifiable batch
        assert snapshot() == before


@pytest.fixture
def caller(client):
    return Caller(client)


@FUZZ
@given(endpoint=st.sampled_from(["sizes", "pull", "push", "served"]), document=documents)
def test_signed_requests_with_hostile_documents(caller, endpoint, document):
    before = snapshot()
    check(caller.post(endpoint, document), before, endpoint)


@FUZZ
@given(endpoint=st.sampled_from(["sizes", "pull", "push"]), body=st.binary(max_size=400))
def test_signed_requests_with_hostile_bytes(caller, endpoint, body):
    before = snapshot()
    check(caller.post(endpoint, body=body), before, endpoint)


@FUZZ
@given(
    endpoint=st.sampled_from(["sizes", "pull", "push"]),
    headers=st.dictionaries(
        st.sampled_from([wire.H_NONCE, "X-SH-Node", "X-SH-Signature", "X-SH-Timestamp", "X-SH-Recipient"])
        | st.text("abcdefXSHN-", min_size=1, max_size=12),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
        max_size=5,
    ),
)
def test_unsigned_or_mangled_headers_are_refused(caller, endpoint, headers):
    before = snapshot()
    response = caller.post(endpoint, {"have": {}}, headers=headers)
    assert response.status_code in (400, 401, 403, 415), response.content
    check(response, before, endpoint)


def test_a_valid_batch_with_one_entry_altered_is_refused_whole(caller):
    from ..ledger.remote import RemoteNode

    remote = RemoteNode()
    for n in range(3):
        remote.patient(patient_number=f"RZ-{n:06d}-X")
    batch = as_batch(remote)
    batch["entries"][1]["payload"] = batch["entries"][1]["payload"].replace("RZ", "RY")
    before = snapshot()
    check(caller.post("push", {"batches": [batch]}), before, "push")
    assert snapshot() == before and not ForkEvidence.objects.exists()


# --- bundles ----------------------------------------------------------------------------------------


@pytest.fixture
def real_bundle(tmp_path):
    from sync import services

    from ..ledger.remote import RemoteNode
    from ..sync.fakes import FakeLog

    sender = FakeLog()
    services.add_peer(node_id=sender.node_id, public_key=sender.public_b64, tier="rural_clinic", role="child")
    remote = RemoteNode()
    patient = remote.patient(patient_number="RQ-000001-X")
    remote.encounter(patient)
    return bundle_file(tmp_path, sender, [as_batch(remote)]).read_bytes()


@FUZZ
@given(data=st.data())
def test_mangled_sync_bundles_are_refused_whole(real_bundle, tmp_path, data):
    kind = data.draw(st.sampled_from(["flip", "cut", "pad", "random"]))
    blob = bytearray(real_bundle)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "pad":
        blob += data.draw(st.binary(min_size=1, max_size=64))
    else:
        blob = bytearray(data.draw(st.binary(max_size=500)))
    path = tmp_path / "hostile.shb"
    path.write_bytes(bytes(blob))
    before = snapshot()
    code, out, err = run("import", str(path), "--json")
    if bytes(blob) == real_bundle:
        return
    assert code in (1, 2), (kind, code, out, err)
    assert (err + out).strip(), "a refusal must say why"
    assert snapshot() == before


@FUZZ
@given(
    document=documents
    | st.fixed_dictionaries(
        {"resourceType": st.just("Bundle")},
        optional={
            "type": st.sampled_from(["transaction", "collection", "batch", 5]),
            "entry": st.lists(json_values, max_size=4),
        },
    )
)
def test_hostile_fhir_bundle_files_are_refused_whole(tmp_path, document):
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document))
    before = snapshot()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("fhir", "import", str(path), stdout=out, stderr=err)
    except (CommandError, SystemExit) as refusal:
        assert str(refusal) or err.getvalue(), "a refusal must say why"
        assert snapshot() == before
        return
    # Accepted: only a structurally valid Bundle can be (an empty one, say); nothing partial either way.
    assert isinstance(document, dict) and document.get("resourceType") == "Bundle", out.getvalue()
