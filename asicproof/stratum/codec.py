"""Stratum v1 wire format: one JSON-RPC object per line, parsed strictly, encoded compactly.

Everything a client sends passes through `parse_line`, so it is the one place that decides what is
well-formed. It raises `ProtocolError` (code 20) for anything else, never a bare ValueError, so the
server can answer and carry on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 16 * 1024  # bytes; a real Stratum message is well under 2 KiB
MAX_METHOD = 64
MAX_STRING_ID = 64
MAX_INT_ID = 2**63  # ids are echoed back; keep them in a range every client can read


class StratumError(Exception):
    """An error with a Stratum code; `as_error()` is the `error` member of the reply."""

    code = 20
    default_message = "Other/Unknown"

    def __init__(self, message: str | None = None):
        self.message = message or self.default_message
        super().__init__(self.message)

    def as_error(self) -> list:
        return [self.code, self.message, None]


class OtherError(StratumError):
    code = 20


class JobNotFound(StratumError):
    code = 21
    default_message = "Job not found (stale)"


class DuplicateShare(StratumError):
    code = 22
    default_message = "Duplicate share"


class LowDifficultyShare(StratumError):
    code = 23
    default_message = "Low difficulty share"


class UnauthorizedWorker(StratumError):
    code = 24
    default_message = "Unauthorized worker"


class NotSubscribed(StratumError):
    code = 25
    default_message = "Not subscribed"


class ProtocolError(OtherError):
    """A malformed message. `msg_id` is the request id when it could be read, so the reply can name it."""

    default_message = "Malformed message"

    def __init__(self, message: str | None = None, msg_id: int | str | None = None):
        super().__init__(message)
        self.msg_id = msg_id


class LineTooLong(ProtocolError):
    default_message = "Line too long"


@dataclass(frozen=True, slots=True)
class Request:
    """A call (or, with id None, a notification)."""

    id: int | str | None
    method: str
    params: list = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Response:
    id: int | str | None
    result: Any
    error: Any


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _check_id(value: Any) -> int | str | None:
    # bool is an int subclass in Python, but true/false is not an id.
    if value is None:
        return None
    if type(value) is int and -MAX_INT_ID < value < MAX_INT_ID:
        return value
    if type(value) is str and len(value) <= MAX_STRING_ID:
        return value
    raise ProtocolError("Invalid id")


def parse_line(line: bytes | str, max_line: int = MAX_LINE) -> Request | Response:
    """Parse one line (without or with its newline) into a Request or Response."""
    if len(line) > max_line:
        raise LineTooLong()
    try:
        text = line.decode("utf-8") if isinstance(line, bytes | bytearray) else line
        obj = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and over-long integer literals.
        raise ProtocolError("Invalid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("Message is not a JSON object")
    msg_id = _check_id(obj.get("id"))
    if "method" not in obj:
        if "result" in obj or "error" in obj:
            return Response(msg_id, obj.get("result"), obj.get("error"))
        raise ProtocolError("Neither a request nor a response", msg_id)
    method = obj["method"]
    if not isinstance(method, str) or not 0 < len(method) <= MAX_METHOD:
        raise ProtocolError("Invalid method", msg_id)
    params = obj.get("params")
    if params is None:
        params = []  # some clients omit params for mining.ping and the like
    if not isinstance(params, list):
        raise ProtocolError("params must be a list", msg_id)
    return Request(msg_id, method, params)


def _dump(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


def encode_result(msg_id: int | str | None, result: Any) -> bytes:
    return _dump({"id": msg_id, "result": result, "error": None})


def encode_error(msg_id: int | str | None, error: StratumError, result: Any = None) -> bytes:
    return _dump({"id": msg_id, "result": result, "error": error.as_error()})


def encode_request(msg_id: int | str, method: str, params: list) -> bytes:
    return _dump({"id": msg_id, "method": method, "params": params})


def encode_notification(method: str, params: list) -> bytes:
    return _dump({"id": None, "method": method, "params": params})
