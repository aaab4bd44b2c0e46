"""A write that fails because the disk is full gets a clear answer, not a generic 500.

The failing write's transaction is rolled back (by the database, and by the atomic block that raised),
so nothing of it was stored: the answer says so. Clinicians get a page, FHIR clients an
OperationOutcome and other API clients (sync peers, scripts) JSON; all with HTTP 507 Insufficient
Storage, which tells a client the request may succeed once space is back.
"""

import errno
import logging

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

SQLITE_FULL = 13  # sqlite3 result code: "database or disk is full"
PG_DISK_FULL = "53100"  # SQLSTATE disk_full ("could not extend file ... No space left on device")
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def _one_is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    if getattr(error, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if getattr(error, "sqlstate", None) == PG_DISK_FULL or getattr(error, "pgcode", None) == PG_DISK_FULL:
        return True
    text = str(error).lower()
    return "database or disk is full" in text or "no space left on device" in text


def is_disk_full(error: BaseException) -> bool:
    """True if the error, or one it was raised from (Django wraps the driver's), means no space left."""
    seen = set()
    while error is not None and id(error) not in seen:
        if _one_is_disk_full(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class DiskFullMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_disk_full(exception):
            return None
        logger.error("disk full during %s %s: %s", request.method, request.path, exception)
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
