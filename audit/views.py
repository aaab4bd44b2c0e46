"""The audit console: ledger browser and verification, alerts, the sync network, period reports.

The ASIC page is asicproof's (/audit/devices/) and the access log is views_access.py; every console
page extends templates/audit/base.html, whose header shows the open alerts.
"""

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import requires
from accounts.roles import Capability
from asicproof.selectors import checkpoint_work, work_by_checkpoint
from ledger import selectors as ledger_selectors
from ledger.models import LogHead
from sync import selectors as sync_selectors

from . import report as reports
from . import selectors, services
from .models import Alert, VerificationRun
from .network import tree_nodes

MAX_NOTE = 2000


def _cursor(request, name: str = "before") -> int | None:
    """A keyset cursor from the query string: a non-negative integer or nothing."""
    text = request.GET.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise BadRequest(f"{name} must be a non-negative whole number")
    return int(text)


@requires(Capability.VIEW_AUDIT)
def overview(request):
    node = ledger_selectors.self_node()
    checkpoint = ledger_selectors.latest_checkpoint(node.node_id)
    return render(
        request,
        "audit/overview.html",
        {
            "node": node,
            "size": ledger_selectors.log_size(node.node_id),
            "checkpoint": checkpoint,
            "work": checkpoint_work(checkpoint) if checkpoint else None,
            "origins": ledger_selectors.origins_summary(),
            "runs": selectors.recent_verification_runs(),
        },
    )


def _known_origin(origin: str) -> None:
    if len(origin) > 64 or not LogHead.objects.filter(origin=origin).exists():
        raise Http404("no log of that origin on this node")


@requires(Capability.VIEW_AUDIT)
def ledger_log(request, origin):
    _known_origin(origin)
    entries, next_before = ledger_selectors.entries_page(origin, before=_cursor(request))
    return render(
        request,
        "audit/ledger_log.html",
        {
            "origin": origin,
            "size": ledger_selectors.log_size(origin),
            "entries": entries,
            "next_before": next_before,
        },
    )


@requires(Capability.VIEW_AUDIT)
def ledger_checkpoints(request, origin):
    _known_origin(origin)
    checkpoints, next_before = ledger_selectors.checkpoints_page(origin, before=_cursor(request))
    ids = [c.pk for c in checkpoints]
    own, mirrored = work_by_checkpoint(ids), sync_selectors.mirrored_work_by_checkpoint(ids)
    for checkpoint in checkpoints:
        a, b = own.get(checkpoint.pk, {}), mirrored.get(checkpoint.pk, {})
        checkpoint.proof_count = a.get("proofs", 0) + b.get("proofs", 0)
        checkpoint.work = a.get("work", 0) + b.get("work", 0)
    return render(
        request,
        "audit/ledger_checkpoints.html",
        {"origin": origin, "checkpoints": checkpoints, "next_before": next_before},
    )


@requires(Capability.VIEW_AUDIT)
@require_POST
def verify_now(request):
    run = services.queue_verification(user=request.user)
    return redirect("audit:verification", pk=run.pk)


@requires(Capability.VIEW_AUDIT)
def verification(request, pk):
    run = get_object_or_404(VerificationRun.objects.select_related("triggered_by"), pk=pk)
    template = "audit/_verification.html" if request.headers.get("HX-Request") else "audit/verification.html"
    return render(request, template, {"run": run})


@requires(Capability.VIEW_AUDIT)
def alerts(request):
    status = request.GET.get("status", "")
    if status and status not in Alert.Status.values:
        raise BadRequest("unknown alert status")
    page, next_before = selectors.alerts_page(status=status or None, before=_cursor(request))
    return render(
        request,
        "audit/alerts.html",
        {"alerts": page, "status": status, "statuses": Alert.Status.choices, "next_before": next_before},
    )


@requires(Capability.VIEW_AUDIT)
def alert_detail(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("handled_by"), pk=pk)
    return render(request, "audit/alert_detail.html", {"alert": alert})


@requires(Capability.VIEW_AUDIT)
@require_POST
def alert_handle(request, pk):
    alert = get_object_or_404(Alert, pk=pk)
    status, note = request.POST.get("status", ""), request.POST.get("note", "").strip()
    if status not in (Alert.Status.ACKNOWLEDGED, Alert.Status.RESOLVED) or len(note) > MAX_NOTE:
        messages.error(request, _("Choose acknowledge or resolve, with a note of at most 2000 characters."))
        return redirect("audit:alert", pk=alert.pk)
    services.handle_alert(alert=alert, user=request.user, status=status, note=note)
    messages.success(
        request, _("Alert %(id)s: %(status)s") % {"id": alert.pk, "status": alert.get_status_display()}
    )
    return redirect("audit:alert", pk=alert.pk)


@requires(Capability.VIEW_AUDIT)
def network(request):
    nodes = sync_selectors.network_nodes()
    drawing, tier_names = tree_nodes(nodes)
    return render(request, "audit/network.html", {"nodes": nodes, "tree": drawing, "tier_names": tier_names})


def _period(request):
    try:
        return reports.parse_period(
            request.GET.get("start"), request.GET.get("end"), today=timezone.localdate()
        ), ""
    except reports.PeriodError as error:
        return None, str(error)


@requires(Capability.VIEW_AUDIT)
def report_form(request):
    period, error = _period(request)
    return render(
        request, "audit/reports.html", {"period": period, "error": error}, status=400 if error else 200
    )


@requires(Capability.VIEW_AUDIT)
def report_print(request):
    period, error = _period(request)
    if error:
        return render(request, "audit/reports.html", {"period": None, "error": error}, status=400)
    return render(request, "audit/report_print.html", reports.period_report(period))


@requires(Capability.VIEW_AUDIT)
def report_csv(request):
    period, error = _period(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(
        reports.report_csv(reports.period_report(period)), content_type="text/csv; charset=utf-8"
    )
    name = f"audit-report-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
