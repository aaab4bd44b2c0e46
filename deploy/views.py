from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.decorators import requires
from accounts.roles import Capability

from . import costmodel
from .forms import CostModelForm

ITEM_LABELS = {
    "asic": _("Mining ASIC"),
    "sbc": _("Single-board computer or server"),
    "gpu_system": _("GPU system"),
    "storage": _("Storage"),
    "networking": _("Networking"),
    "solar_panel": _("Solar panel"),
    "solar_balance": _("Charge controller and wiring"),
    "battery": _("Battery"),
    "energy": _("Electricity or fuel"),
    "connectivity": _("Connectivity"),
    "maintenance": _("Maintenance"),
}


def _labelled(items: list[dict]) -> list[dict]:
    return [{**item, "label": ITEM_LABELS.get(item["item"], item["item"])} for item in items]


@requires(Capability.VIEW_AUDIT)
def costmodel_page(request):
    """The shipped assumptions priced for one tier and horizon (GET form), with the sensitivity table."""
    data = request.GET if request.GET else {"tier": settings.TIER, "years": 5}
    form = CostModelForm(data)
    report, error = None, None
    if form.is_valid():
        try:
            assumptions = costmodel.load_assumptions()
            report = costmodel.estimate(
                assumptions, tier=form.cleaned_data["tier"], years=form.cleaned_data["years"]
            )
        except costmodel.AssumptionError as problem:
            error = str(problem)
    if report:
        report["breakdown"] = _labelled(report["breakdown"])
        report["gpu_alternative_breakdown"] = _labelled(report["gpu_alternative_breakdown"])
        report["reduction_percent"] = report["reduction_fraction"] * 100
        report["change_percent"] = report["sensitivity"]["change_fraction"] * 100
    status = 200 if report else 400
    return render(
        request, "deploy/costmodel.html", {"form": form, "report": report, "error": error}, status=status
    )
