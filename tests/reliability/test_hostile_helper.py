"""The shared hostile-input assertions refuse what they must: a 5xx, a mute refusal, a changed count."""

import json

import pytest

from .hostile import ERROR, FORM, OUTCOME, assert_answered, assert_refused


class Response:
    def __init__(self, status: int, body):
        self.status_code = status
        self.content = body if isinstance(body, bytes) else json.dumps(body).encode()


OUTCOME_BODY = {"resourceType": "OperationOutcome", "issue": [{"code": "invalid"}]}


def test_clean_answers_pass():
    assert_answered(Response(200, {}), lambda: 1, 1, says=OUTCOME)
    assert_answered(Response(422, OUTCOME_BODY), lambda: 1, 1, says=OUTCOME)
    assert_answered(Response(403, {"error": "no"}), lambda: 1, 1, says=ERROR, success=(200,))
    assert_refused(Response(400, b'<ul class="errorlist">'), lambda: 1, 1, says=FORM, status=400)


@pytest.mark.parametrize(
    "response,says,success",
    [
        (Response(500, OUTCOME_BODY), OUTCOME, None),
        (Response(422, {"resourceType": "OperationOutcome", "issue": []}), OUTCOME, None),
        (Response(400, {"error": ""}), ERROR, None),
        (Response(201, {}), ERROR, (200,)),  # only 200 is a success there
        (Response(400, b"<p>nope</p>"), FORM, None),
    ],
    ids=["5xx", "outcome-without-issue", "empty-error", "unexpected-success", "form-without-error"],
)
def test_unclean_answers_fail(response, says, success):
    with pytest.raises(AssertionError):
        assert_answered(response, lambda: 1, 1, says=says, success=success)


def test_a_refusal_that_changed_something_fails():
    with pytest.raises(AssertionError, match="changed something"):
        assert_refused(Response(400, {"error": "no"}), lambda: 2, 1, says=ERROR)


def test_an_unexpected_status_fails():
    with pytest.raises(AssertionError):
        assert_refused(Response(404, {"error": "no"}), lambda: 1, 1, says=ERROR, status=400)
