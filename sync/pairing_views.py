"""Pairing by one-time code: the admin page (issue a code here, or join a parent with its code) and
the parent's endpoint a child posts to. Thin: the work is in pairing_services."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.decorators import requires
from accounts.roles import Capability
from ledger import selectors as ledger_selectors

from . import pairing, pairing_services
from .services import SyncError


@requires(Capability.MANAGE_NODE)
@require_http_methods(["GET", "POST"])
def pair_page(request):
    identity = ledger_selectors.node_identity()
    context = {
        "node_id": identity.node_id,
        "this_url": request.build_absolute_uri("/").rstrip("/"),
        "lifetime_minutes": int(pairing_services.CODE_LIFETIME.total_seconds() // 60),
        "code": "",
        "error": "",
        "joined": None,
    }
    status = 200
    action = request.POST.get("action", "") if request.method == "POST" else ""
    try:
        if action == "issue":
            code, _row = pairing_services.issue_code(created_by=request.user.get_username())
            context["code"] = pairing.grouped(code)
        elif action == "join":
            context["joined"] = pairing_services.join_parent(
                parent_url=request.POST.get("parent_url", "")[:255],
                code=request.POST.get("code", "")[:64],
                own_url=request.POST.get("own_url", "")[:255],
            )
        elif action:
            context["error"] = _("Unknown action.")
            status = 400
    except SyncError as error:
        context["error"] = _("Pairing refused: %(reason)s") % {"reason": error}
        status = 422
    return render(request, "sync/pair.html", context, status=status)


@csrf_exempt
@require_http_methods(["POST"])
def pair_accept(request):
    """A child's pairing request (JSON, authenticated by the code, not by a session)."""
    length = request.headers.get("Content-Length") or "0"
    if not length.isdigit() or int(length) > pairing.MAX_BODY_BYTES:
        return JsonResponse({"error": "body too large", "refused": True}, status=413)
    body = request.read(pairing.MAX_BODY_BYTES + 1)
    try:
        answer = pairing_services.accept(body=body, url=request.build_absolute_uri("/"))
    except pairing.PairingError as error:
        return JsonResponse({"error": str(error), "refused": True}, status=400)
    except SyncError as error:
        return JsonResponse({"error": str(error), "refused": True}, status=403)
    return HttpResponse(answer, content_type="application/json")
