from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from accounts.decorators import requires
from accounts.roles import Capability, has_capability
from asicproof.selectors import checkpoint_work

from . import selectors
from .models import Entry


@requires(Capability.VIEW_AUDIT)
def console(request):
    node = selectors.self_node()
    checkpoint = selectors.latest_checkpoint(node.node_id)
    return render(
        request,
        "ledger/console.html",
        {
            "node": node,
            "size": selectors.log_size(node.node_id),
            "checkpoint": checkpoint,
            "work": checkpoint_work(checkpoint) if checkpoint else None,
            "recent": Entry.objects.order_by("-id")[:50],
        },
    )


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
