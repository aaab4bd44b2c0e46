"""What every hostile-input test asserts of an HTTP answer: never a 5xx, and a refusal is a 4xx that
says why (in the shape its endpoint speaks) and leaves the counted rows as they were.

`snapshot` is the test's own counter (rows, ledger entries, files...): called again after the
request, it must equal `before`, taken just before it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

OUTCOME = "outcome"  # FHIR: an OperationOutcome with at least one issue
ERROR = "error"  # JSON {"error": why}
FORM = "form"  # an HTML page that shows the form's error


def assert_says_why(response, says: str) -> None:
    if says == FORM:
        assert b"error" in response.content, response.content[:300]
        return
    body = json.loads(response.content)
    if says == OUTCOME:
        assert body["resourceType"] == "OperationOutcome" and body["issue"], body
    elif says == ERROR:
        assert body["error"], body
    else:
        raise ValueError(f"unknown refusal shape {says!r}")


def assert_refused(
    response,
    snapshot: Callable[[], object],
    before,
    *,
    says: str,
    status: int | None = None,
    context: tuple = (),
) -> None:
    """A 4xx (exactly `status` when given) that says why and changed nothing."""
    code = response.status_code
    if status is not None:
        assert code == status, (*context, code, response.content[:300])
    assert 400 <= code < 500, (*context, code, response.content[:300])
    assert_says_why(response, says)
    assert snapshot() == before, f"a refused request changed something {context}"


def assert_answered(
    response,
    snapshot: Callable[[], object],
    before,
    *,
    says: str,
    success: tuple[int, ...] | None = None,
    context: tuple = (),
) -> None:
    """Never a 5xx: a success (any status below 400, or one of `success`) or a clean refusal."""
    code = response.status_code
    assert code < 500, (*context, code, response.content[:300])
    if code in success if success is not None else code < 400:
        return
    assert_refused(response, snapshot, before, says=says, context=context)
