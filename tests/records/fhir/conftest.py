import json
from pathlib import Path

import pytest

from records.fhir import jsonio
from records.fhir.tokens import issue_token

BUNDLES = Path(__file__).parent / "bundles"
FHIR_JSON = "application/fhir+json"


def load_bundle(name: str) -> dict:
    """A hand-written bundle from tests/records/fhir/bundles, decimals as Decimals."""
    return jsonio.loads((BUNDLES / name).read_bytes())


class Api:
    """The test client speaking FHIR with a bearer token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def get(self, url, **extra):
        return self.client.get(url, **self.headers, **extra)

    def post(self, url, body, content_type=FHIR_JSON, **extra):
        data = body if isinstance(body, (bytes, str)) else jsonio.dumps(body)
        return self.client.post(url, data=data, content_type=content_type, **self.headers, **extra)

    def put(self, url, body, content_type=FHIR_JSON, **extra):
        data = body if isinstance(body, (bytes, str)) else jsonio.dumps(body)
        return self.client.put(url, data=data, content_type=content_type, **self.headers, **extra)


def body(response) -> dict:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return json.loads(content)


@pytest.fixture
def api(client, make_user):
    def as_role(role: str, username: str | None = None) -> Api:
        user = make_user(role, username=username)
        return Api(client, issue_token(user=user, name="tests"))

    return as_role
