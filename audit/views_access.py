"""Audit console: the access log (who read which patient's record), its chain check, anchors, export."""

import uuid

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import requires
from accounts.roles import Capability
from ledger.selectors import self_node_id
from records.models import Patient

from . import anchoring, fhir_audit, selectors
from .models import AccessEvent
from .services import record_access

PAGE_SIZE = 50


class _Filters:
    """The access log's query string: ?user=NAME&patient=UUID-or-number&before=ID (keyset cursor)."""

    def __init__(self, params):
        self.user = params.get("user", "").strip()[:150]
        self.patient_text = params.get("patient", "").strip()[:64]
        self.error = ""
        self.patient_id = None
        if self.patient_text:
            self.patient_id = self._patient_id(self.patient_text)
        try:
            self.before = int(params.get("before", "")) if params.get("before") else None
        except ValueError:
            self.before, self.error = None, _("The page cursor is not a number.")
        if self.before is not None and self.before < 1:
            self.before = None

    def _patient_id(self, text):
        try:
            return uuid.UUID(text)
        except ValueError:
            pass
        found = Patient.objects.filter(patient_number=text.upper()).values_list("pk", flat=True).first()
        if found is None:
            self.error = _("No patient has that id or number.")
        return found

    @property
    def invalid(self) -> bool:
        return bool(self.error)

    def events(self, *, paged: bool = True):
        return selectors.accesses(
            username=self.user or None, patient_id=self.patient_id, before=self.before if paged else None
        )


@requires(Capability.VIEW_AUDIT)
def access_log(request):
    filters = _Filters(request.GET)
    events, next_before = [], None
    if not filters.invalid:
        events = list(filters.events()[: PAGE_SIZE + 1])
        if len(events) > PAGE_SIZE:
            events = events[:PAGE_SIZE]
            next_before = events[-1].id
    numbers = dict(
        Patient.objects.filter(pk__in={e.patient_id for e in events if e.patient_id}).values_list(
            "pk", "patient_number"
        )
    )
    rows = [(event, numbers.get(event.patient_id, "")) for event in events]
    patient = Patient.objects.filter(pk=filters.patient_id).first() if filters.patient_id else None
    status = 400 if filters.invalid else 200
    context = {"filters": filters, "rows": rows, "next_before": next_before, "patient": patient}
    return render(request, "audit/access_log.html", context, status=status)


@requires(Capability.VIEW_AUDIT)
def access_chain(request):
    """The chain check, loaded separately (htmx) so that the log's page stays fast on a long log."""
    check = selectors.verify_access_chain()
    context = {"check": check, "anchors": anchoring.anchors(limit=5)}
    template = "audit/_access_chain.html" if request.headers.get("HX-Request") else "audit/access_chain.html"
    return render(request, template, context)


@requires(Capability.VIEW_AUDIT)
@require_POST
def access_anchor(request):
    try:
        anchor = anchoring.anchor_access_log(author=request.user.username)
    except anchoring.AnchorRefused as error:
        messages.error(request, _("The access log was not anchored: %(why)s") % {"why": error})
    else:
        messages.success(request, _("Access log anchored at %(count)s events.") % {"count": anchor.count})
    return redirect("audit_access:log")


@requires(Capability.VIEW_AUDIT)
def access_export(request):
    """The filtered log as a FHIR R4 Bundle of AuditEvents (every page, not just the one on screen)."""
    filters = _Filters(request.GET)
    if filters.invalid:
        return access_log(request)
    # The rows are chosen before the export records itself, so it never lists its own event.
    newest = AccessEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    record_access(
        user=request.user,
        action=AccessEvent.Action.EXPORT,
        object_type="AccessLog",
        detail={k: str(v) for k, v in (("user", filters.user), ("patient", filters.patient_id)) if v},
        request=request,
    )
    events = filters.events(paged=False).filter(id__lte=newest).order_by("id").iterator(chunk_size=2000)
    response = StreamingHttpResponse(
        fhir_audit.bundle_chunks(events, node_id=self_node_id()),
        content_type="application/fhir+json; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="access-log-{stamp}.json"'
    return response
