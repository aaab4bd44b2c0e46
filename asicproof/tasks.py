from celery import shared_task

from . import services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def poll_devices() -> int:
    """Periodic: read every attached device's hash rate, temperature, power and shares (health history)."""
    return len(services.poll_devices())
