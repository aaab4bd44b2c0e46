"""Clinic UI views: thin, they check the role, call a selector or a service, render a template."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import requires
from accounts.roles import Capability
from audit.models import AccessEvent
from audit.services import record_access

from . import selectors, services
from .forms import AttachmentForm, EncounterForm, MergeForm, PatientForm
from .models import Attachment, Patient


def _patient_or_404(user, patient_id) -> Patient:
    try:
        return selectors.get_patient(user=user, patient_id=patient_id)
    except Patient.DoesNotExist:
        raise Http404 from None


@requires(Capability.VIEW_PATIENTS)
def home(request):
    query = request.GET.get("q", "")
    results = selectors.search_patients(user=request.user, query=query) if query else None
    template = "records/_search_results.html" if request.headers.get("HX-Request") else "records/home.html"
    recent = selectors.recent_patients(user=request.user) if template.endswith("home.html") else []
    return render(request, template, {"query": query, "results": results, "recent": recent})


@requires(Capability.REGISTER_PATIENTS)
@require_http_methods(["GET", "POST"])
def register(request):
    form = PatientForm(request.POST or None)
    candidates = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        candidates = selectors.possible_duplicates(
            user=request.user,
            given_name=data["given_name"],
            family_name=data["family_name"],
            sex=data["sex"],
            birth_date=data["birth_date"],
            village=data["village"],
            phone=data["phone"],
        )
        if not candidates or data["confirm_new"]:
            try:
                patient = services.register_patient(
                    author=request.user.username,
                    given_name=data["given_name"],
                    family_name=data["family_name"],
                    sex=data["sex"],
                    birth_date=data["birth_date"],
                    birth_date_estimated=data["birth_date_estimated"],
                    village=data["village"],
                    phone=data["phone"],
                    not_duplicate_of=[c.patient for c in candidates],
                    confirmed_by=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(
                    request,
                    _("Registered %(name)s as %(number)s.")
                    % {"name": patient.full_name, "number": patient.patient_number},
                )
                return redirect("records:chart", patient_id=patient.pk)
    return render(request, "records/register.html", {"form": form, "candidates": candidates})


@requires(Capability.VIEW_PATIENTS)
def chart(request, patient_id):
    patient = _patient_or_404(request.user, patient_id)
    if patient.merged_into_id:
        messages.info(request, _("This record was merged; showing the surviving record."))
        return redirect("records:chart", patient_id=patient.merged_into_id)
    chart = selectors.patient_chart(user=request.user, patient=patient)
    record_access(
        user=request.user,
        action=AccessEvent.Action.CHART_READ,
        patient_id=patient.pk,
        object_type="Patient",
        object_id=str(patient.pk),
        detail={"clinical": chart.clinical},
        request=request,
    )
    return render(
        request, "records/chart.html", {"chart": chart, "patient": patient, "merge_form": MergeForm()}
    )


@requires(Capability.RECORD_ENCOUNTERS)
@require_http_methods(["GET", "POST"])
def encounter_new(request, patient_id):
    patient = _patient_or_404(request.user, patient_id)
    can_prescribe = request.user.can(Capability.DIAGNOSE_AND_PRESCRIBE)
    form = EncounterForm(request.POST or None, can_prescribe=can_prescribe)
    if request.method == "POST" and form.is_valid():
        try:
            services.record_encounter(patient=patient, author=request.user.username, data=form.to_input())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Encounter recorded."))
            return redirect("records:chart", patient_id=patient.pk)
    return render(request, "records/encounter_form.html", {"form": form, "patient": patient})


@requires(Capability.UPLOAD_ATTACHMENTS)
@require_http_methods(["GET", "POST"])
def attachment_new(request, patient_id):
    patient = _patient_or_404(request.user, patient_id)
    form = AttachmentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            services.add_attachment(
                patient=patient,
                author=request.user.username,
                title=form.cleaned_data["title"],
                content=form.content,
                media_type=form.media_type,
                filename=upload.name,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("File attached."))
            return redirect("records:chart", patient_id=patient.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "records/attachment_form.html", {"form": form, "patient": patient}, status=status)


@requires(Capability.VIEW_CLINICAL)
def attachment_file(request, attachment_id):
    try:
        attachment = selectors.get_attachment(user=request.user, attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404 from None
    if attachment.watermark_status == Attachment.WatermarkStatus.PENDING:
        return HttpResponse(_("This image is being watermarked; try again in a moment."), status=409)
    record_access(
        user=request.user,
        action=AccessEvent.Action.IMAGE_READ,
        patient_id=attachment.patient_id,
        object_type="Attachment",
        object_id=str(attachment.pk),
        detail={"media_type": attachment.media_type},
        request=request,
    )
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.media_type)
    response["Content-Disposition"] = f'attachment; filename="{attachment.pk}"'
    return response


@requires(Capability.MERGE_PATIENTS)
@require_POST
def merge(request, patient_id):
    keep = _patient_or_404(request.user, patient_id)
    form = MergeForm(request.POST)
    if form.is_valid():
        duplicate = Patient.objects.filter(
            patient_number=form.cleaned_data["duplicate_number"].strip().upper()
        ).first()
        if duplicate is None:
            messages.error(request, _("No patient has that number."))
        else:
            try:
                services.merge_patients(keep=keep, duplicate=duplicate, author=request.user.username)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(
                    request, _("Merged %(number)s into this record.") % {"number": duplicate.patient_number}
                )
    return redirect("records:chart", patient_id=keep.pk)
