from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.decorators import requires
from accounts.roles import Capability

from . import selectors, services


@requires(Capability.VIEW_AUDIT)
def devices(request):
    return render(request, "asicproof/devices.html", {"devices": selectors.devices_for_console()})


@requires(Capability.MANAGE_NODE)
@require_POST
def decide(request, worker):
    approve = request.POST.get("decision") == "approve"
    device = services.decide_device(worker=worker, approve=approve, user=request.user)
    messages.success(
        request,
        _("%(worker)s: %(status)s") % {"worker": device.worker, "status": device.get_status_display()},
    )
    return redirect("asicproof:devices")
