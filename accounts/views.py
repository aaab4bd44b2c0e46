from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import services


@require_POST
@login_required
def set_language(request):
    try:
        services.set_language(user=request.user, language=request.POST.get("language", ""))
    except services.AccountError as error:
        return HttpResponseBadRequest(str(error))
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
