"""Writes for images: watermark a stored attachment (the Celery task calls this)."""

import hashlib
import logging

from django.core.files.base import ContentFile
from django.db import transaction

from ledger.models import Entry
from records import services as record_services
from records.models import Attachment

from .codec import WatermarkError, WatermarkPayload, embed
from .formats import ImageFormatError, load_image, save_image
from .keys import node_watermark_key

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/png": ".png", "image/tiff": ".tif", "application/dicom": ".dcm"}


def payload_for(attachment: Attachment) -> WatermarkPayload:
    """The attachment's UUID and its creating ledger entry: what the watermark names."""
    entry = Entry.objects.filter(object_id=attachment.pk, kind="create").order_by("hlc").first()
    if entry is None:
        raise WatermarkError(f"attachment {attachment.pk} has no ledger entry")
    return WatermarkPayload(attachment.pk, entry.index, bytes(entry.leaf_hash))


def watermark_attachment(*, attachment_id, author: str = "watermarker") -> Attachment:
    """Mark a pending image and store the marked file in place of the upload. Idempotent: an
    attachment that is no longer pending is returned unchanged. Failure is recorded, not raised."""
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().get(pk=attachment_id)
        if attachment.watermark_status != Attachment.WatermarkStatus.PENDING:
            return attachment
        upload = attachment.file
        try:
            with upload.open("rb") as handle:
                pixels, meta = load_image(handle.read(), attachment.media_type)
            marked = save_image(embed(pixels, payload_for(attachment), node_watermark_key()), meta)
        except (WatermarkError, ImageFormatError) as error:
            log.warning("watermarking attachment %s failed: %s", attachment.pk, error)
            attachment.watermark_status = Attachment.WatermarkStatus.FAILED
            attachment.watermark_detail = str(error)[:255]
            return record_services.record_update(attachment, author=author)
        old_name = upload.name
        extension = _EXTENSIONS.get(meta.media_type, ".bin")
        attachment.file.save(f"{attachment.pk}{extension}", ContentFile(marked), save=False)
        attachment.media_type = meta.media_type
        attachment.size_bytes = len(marked)
        attachment.sha256 = hashlib.sha256(marked).hexdigest()
        attachment.watermark_status = Attachment.WatermarkStatus.MARKED
        attachment.watermark_detail = meta.conversion_reason or ""
        record_services.record_update(attachment, author=author)
        if old_name != attachment.file.name:
            transaction.on_commit(lambda: attachment.file.storage.delete(old_name))
    return attachment


def alert_if_tampered(*, check, content: bytes, source: str):
    """A watermark check that shows tampering (altered blocks, or a watermark naming a ledger entry
    it does not match) becomes a "watermark" alert in the audit console. Returns the alert or None.

    An image with no recoverable watermark of this node is not evidence of tampering here (it may come
    from elsewhere), so it raises nothing."""
    if not check.ok:
        return None
    damaged = bool(check.damaged_fraction)
    if not damaged and check.entry_matches is not False:
        return None
    from audit.services import raise_alert  # late: audit reads records, not the other way round

    digest = hashlib.sha256(content).hexdigest()
    what = "altered pixels" if damaged else "watermark does not match its ledger entry"
    return raise_alert(
        kind="watermark",
        fingerprint=f"watermark:{check.record}:{digest}",
        title=f"Image of record {check.record}: {what}",
        evidence={**check.as_dict(), "image_sha256": digest, "source": source[:200]},
    )
