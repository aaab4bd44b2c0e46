from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.decorators import requires
from accounts.roles import Capability, has_capability

from . import selectors


@requires(Capability.VIEW_PATIENTS)
def history(request, object_id):
    """Every version of one record, with author and time: what the chart's 'verified' mark links to."""
    entries = selectors.entries_for_object(object_id)
    if (
        entries
        and entries[0].object_type != "Patient"
        and not has_capability(request.user, Capability.VIEW_CLINICAL)
    ):
        raise PermissionDenied
    return render(request, "ledger/history.html", {"entries": entries, "object_id": object_id})
