"""A write that fails because the disk is full gets a clear answer, not a generic 500.

The failing write's transaction is rolled back (by the database, and by the atomic block that raised),
so nothing of it was stored: the answer says so. Clinicians get a page, FHIR clients an
OperationOutcome and other API clients (sync peers, scripts) JSON; all with HTTP 507 Insufficient
Storage, which tells a client the request may succeed once space is back.

Views raise it (DiskFullMiddleware); so does the session save after the view, at login for one
(DiskFullSessionMiddleware, in place of Django's SessionMiddleware, whose errors no later middleware sees).
"""

import errno
import logging
import os
import resource

from django.conf import settings
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

SQLITE_FULL = 13  # sqlite3 result code: "database or disk is full"
SQLITE_IOERR_WRITE = 778  # extended code: a write failed for a reason SQLite does not name
SQLITE_LARGEST_WRITE = 65536 + 24  # the largest page SQLite writes, with its WAL frame header
PG_DISK_FULL = "53100"  # SQLSTATE disk_full ("could not extend file ... No space left on device")
# No space, the user's quota spent, or a file past the largest size allowed (RLIMIT_FSIZE, the
# filesystem's limit): in each, the write can succeed once the operator frees or grants space.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# The same errors as drivers word them; PostgreSQL reports a file it cannot grow other than for ENOSPC
# (EFBIG, EDQUOT, a short write) as "could not extend file" with SQLSTATE XX000. Not "file too large":
# an upload refused for its size is no full disk (EFBIG itself is known by its errno above).
_NO_SPACE_TEXT = (
    "database or disk is full",
    "no space left on device",
    "disk quota exceeded",
    "could not extend file",
)


def _sqlite_file_at_size_limit() -> bool:
    """A database file has reached the largest file this process may write (RLIMIT_FSIZE).

    SQLite reports ENOSPC as "database or disk is full" but EFBIG only as a write error, so a write
    error counts as a full disk when one of the database's files cannot grow by another page.
    """
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY:
        return False
    for database in settings.DATABASES.values():
        if database["ENGINE"] != "django.db.backends.sqlite3":
            continue
        for suffix in ("", "-wal", "-journal"):
            path = f"{database['NAME']}{suffix}"
            if os.path.exists(path) and os.path.getsize(path) + SQLITE_LARGEST_WRITE > limit:
                return True
    return False


def _one_is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    code = getattr(error, "sqlite_errorcode", None)
    if code == SQLITE_FULL or (code == SQLITE_IOERR_WRITE and _sqlite_file_at_size_limit()):
        return True
    if getattr(error, "sqlstate", None) == PG_DISK_FULL or getattr(error, "pgcode", None) == PG_DISK_FULL:
        return True
    text = str(error).lower()
    return any(words in text for words in _NO_SPACE_TEXT)


def is_disk_full(error: BaseException) -> bool:
    """True if the error, or one it was raised from (Django wraps the driver's), means no space left."""
    seen = set()
    while error is not None and id(error) not in seen:
        if _one_is_disk_full(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def disk_full_response(request, error: BaseException):
    """The 507 answer: a page for people, an OperationOutcome for FHIR clients, JSON for the rest."""
    logger.error("disk full during %s %s: %s", request.method, request.path, error)
    message = _("The disk is full: nothing was saved.")
    advice = _("Ask the operator to free space on this computer, then try again.")
    if request.path.startswith("/fhir"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "fatal", "code": "no-store", "diagnostics": f"{message} {advice}"}],
        }
        return JsonResponse(outcome, status=507, content_type="application/fhir+json")
    if "text/html" not in request.headers.get("Accept", ""):
        return JsonResponse({"error": message, "disk_full": True, "saved": False}, status=507)
    return render(request, "disk_full.html", {"message": message, "advice": advice}, status=507)


class DiskFullMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return disk_full_response(request, exception) if is_disk_full(exception) else None


class DiskFullSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware, answering 507 when the session cannot be saved for lack of space.

    The save runs after the view (Django reports the failed UPDATE as SessionInterrupted, a 400): the
    answer then carries no session cookie, so the browser keeps its old session (at login: not logged
    in), and the failed statement was rolled back by the session store's own atomic block. It keeps the
    protective headers the middleware below this one gave the view's answer.
    """

    KEPT_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "Cache-Control")

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except Exception as error:
            if not is_disk_full(error):
                raise
            answer = disk_full_response(request, error)
            for header in self.KEPT_HEADERS:
                if header in response:
                    answer[header] = response[header]
            return answer
