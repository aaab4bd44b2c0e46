"""The search in the clinic UI (results page, "ask this chart") and as JSON under /api/search.
Thin: parse, call the ask service (which logs the search), render."""

import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.decorators import requires
from accounts.roles import Capability, has_capability
from records import selectors as record_selectors
from records.fhir.tokens import user_for_token
from records.models import Patient

from . import forms, services


def _patient_scope(user, patient_id) -> tuple[Patient | None, tuple]:
    if not patient_id:
        return None, ()
    try:
        patient = record_selectors.get_patient(user=user, patient_id=patient_id)
    except (Patient.DoesNotExist, ValidationError, ValueError, TypeError):  # "?patient=0" is no UUID
        raise Http404 from None
    return patient, tuple(record_selectors.patient_group_ids(patient))


@requires(Capability.VIEW_PATIENTS)
@require_GET
def results(request):
    """The answer page; with HX-Request just the answer (the chart's "ask this chart" box)."""
    question = request.GET.get("q", "")
    patient, group = _patient_scope(request.user, request.GET.get("patient", ""))
    answer, error = None, ""
    if question.strip():
        try:
            text, filters = forms.parse(request.GET, patient_ids=group)
            answer = services.ask(
                user=request.user,
                question=text,
                filters=filters,
                request=request,
                patient_id=patient.pk if patient else None,
            )
        except services.BadQuestion as problem:
            error = str(problem)
    template = "search/_answer.html" if request.headers.get("HX-Request") else "search/results.html"
    return render(
        request,
        template,
        {"ask": question, "answer": answer, "error": error, "patient": patient},
        status=400 if error else 200,
    )


def _api_user(request):
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        return user
    return request.user if request.user.is_authenticated else None


@require_GET
def api(request):
    """GET /api/search?q=...[&patient=UUID&from=&to=&type=&code=]: one JSON answer."""
    user = _api_user(request)
    if user is None:
        return JsonResponse({"error": _("Sign in, or send Authorization: Bearer <token>.")}, status=401)
    if not has_capability(user, Capability.VIEW_PATIENTS):
        return JsonResponse({"error": _("Your role may not search the records.")}, status=403)
    try:
        patient, group = _patient_scope(user, request.GET.get("patient", ""))
        question, filters = forms.parse(request.GET, patient_ids=group)
        answer = services.ask(
            user=user, question=question, filters=filters, request=request, patient_id=patient and patient.pk
        )
    except services.BadQuestion as problem:
        return JsonResponse({"error": str(problem)}, status=400)
    except Http404:
        return JsonResponse({"error": _("No such patient.")}, status=404)
    except PermissionDenied:
        return JsonResponse({"error": _("Your role may not search the records.")}, status=403)
    return JsonResponse(answer.as_json(), json_dumps_params={"ensure_ascii": False}, encoder=json.JSONEncoder)
