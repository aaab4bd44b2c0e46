"""Clinic UI for sync conflicts: thin views (role check, selector or service, template). Session-
authenticated and CSRF-protected, unlike the node-to-node endpoints in views.py."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.decorators import requires
from accounts.roles import Capability, has_capability

from . import conflicts, selectors
from .models import RecordConflict


@requires(Capability.VIEW_CLINICAL)
def conflict_list(request):
    return render(request, "sync/conflicts.html", {"conflicts": _with_choices(selectors.open_conflicts())})


@requires(Capability.VIEW_CLINICAL)
def patient_conflicts(request, patient_id):
    """The chart's fragment (loaded by htmx): this patient's open conflicts, or nothing."""
    found = _with_choices(selectors.open_conflicts(patient_id=patient_id))
    return render(request, "sync/_patient_conflicts.html", {"conflicts": found})


@requires(Capability.VIEW_CLINICAL)
@require_http_methods(["GET", "POST"])
def conflict_resolve(request, conflict_id):
    try:
        conflict = selectors.get_conflict(conflict_id)
    except RecordConflict.DoesNotExist:
        raise Http404 from None
    error = ""
    if request.method == "POST":
        if not has_capability(request.user, Capability.RECORD_ENCOUNTERS):
            error = _("Your role cannot change clinical records.")
        else:
            values = {}
            for name in conflict.fields:
                choice = request.POST.get(f"choice-{name}", "")
                values[name] = request.POST.get(f"new-{name}", "").strip() if choice == "__new__" else choice
            try:
                conflicts.resolve(conflict=conflict, author=request.user.username, values=values)
            except (conflicts.ConflictError, ValidationError) as problem:
                error = "; ".join(problem.messages) if isinstance(problem, ValidationError) else str(problem)
            else:
                if not request.headers.get("HX-Request"):
                    messages.success(
                        request, _("Conflict resolved; the resolution will sync to other nodes.")
                    )
                    return redirect("sync:conflicts")
    conflict.refresh_from_db()
    context = {"conflict": _with_choices([conflict])[0], "error": error}
    return render(request, "sync/_conflict.html", context, status=422 if error else 200)


def _with_choices(found: list[RecordConflict]) -> list[RecordConflict]:
    for conflict in found:
        conflict.choices = selectors.choices(conflict)
    return found
