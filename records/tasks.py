from celery import shared_task

from .imaging import services as imaging_services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def watermark_attachment(attachment_id: str) -> str:
    """Watermark an uploaded image before it is served (idempotent: a marked image is left alone)."""
    return imaging_services.watermark_attachment(attachment_id=attachment_id).watermark_status
