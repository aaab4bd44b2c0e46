from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.decorators import requires
from accounts.roles import Capability
from audit.models import AccessEvent
from audit.services import record_access
from records import selectors as record_selectors
from records.models import Attachment

from . import selectors, services
from .formats import ImageFormatError
from .forms import CheckImageForm
from .preview import preview_png


@requires(Capability.VIEW_PATIENTS)
@require_http_methods(["GET", "POST"])
def check_image(request):
    """Anyone signed in can check a copy of an image: which record, which entry, intact or where not."""
    form = CheckImageForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        result = selectors.check_image(form.content)
        services.alert_if_tampered(
            check=result, content=form.content, source=f"image check by {request.user.username}"
        )
    status = 400 if request.method == "POST" and not form.is_valid() else 200
    return render(request, "records/check_image.html", {"form": form, "result": result}, status=status)


@requires(Capability.VIEW_CLINICAL)
def attachment_preview(request, attachment_id):
    try:
        attachment = record_selectors.get_attachment(user=request.user, attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404 from None
    if attachment.watermark_status != Attachment.WatermarkStatus.MARKED:
        raise Http404("no preview: the image is not watermarked yet")
    try:
        with attachment.file.open("rb") as handle:
            png = preview_png(handle.read(), attachment.media_type)
    except ImageFormatError:
        raise Http404 from None
    record_access(
        user=request.user,
        action=AccessEvent.Action.IMAGE_READ,
        patient_id=attachment.patient_id,
        object_type="Attachment",
        object_id=str(attachment.pk),
        detail={"preview": True},
        request=request,
    )
    response = HttpResponse(png, content_type="image/png")
    # Not cached: a clinical image must not outlive the session in a shared laptop's browser cache,
    # and each view of it is an access the log must see.
    response["Cache-Control"] = "no-store, private"
    return response
