"""What auditors need besides the ledger itself: who read what, and what went wrong.

AccessEvent rows form a hash chain (each row's hash covers the previous row's hash), so deleting or
editing a row breaks every hash after it. Alert rows are the console's inbox: one per distinct problem
(its fingerprint), whatever raised it (ledger verify, the sync fork check, the watermark check).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AccessEvent(models.Model):
    class Action(models.TextChoices):
        CHART_READ = "chart_read", _("Chart read")
        SEARCH = "search", _("Search")
        EXPORT = "export", _("Export")
        PROOF_DOWNLOAD = "proof_download", _("Proof download")
        FHIR_READ = "fhir_read", _("FHIR read")
        IMAGE_READ = "image_read", _("Image read")

    at = models.DateTimeField(db_index=True)
    # The user row may go; the chain keeps the name and role as they were.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=20)
    action = models.CharField(max_length=20, choices=Action.choices)
    patient_id = models.UUIDField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [models.Index(fields=["username", "at"])]


class AccessLogHead(models.Model):
    """One row, locked for every append so that the chain never forks under concurrent writers."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    count = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)


class Alert(models.Model):
    class Kind(models.TextChoices):
        TAMPER = "tamper", _("Tamper")  # ledger verify found a problem
        FORK = "fork", _("Fork")  # a peer showed two inconsistent checkpoints for one origin
        WATERMARK = "watermark", _("Watermark")  # an image failed its watermark check
        DEVICE = "device", _("Device")  # an ASIC misbehaved (invalid shares, wrong job)

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Same problem found again -> same fingerprint -> the existing alert is touched, not duplicated.
    fingerprint = models.CharField(max_length=200, unique=True)
    title = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    raised_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    seen_count = models.PositiveIntegerField(default=1)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    handling_note = models.TextField(blank=True)


class VerificationRun(models.Model):
    """One full `ledger verify`, started from the console or the command line. Every run is kept:
    an auditor can show what was checked, when, by whom, and what it found."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        PASSED = "passed", _("Passed")  # checked, nothing wrong
        FAILED = "failed", _("Failed")  # checked, problems found (each one is also an alert)
        ERROR = "error", _("Error")  # could not finish

    class Source(models.TextChoices):
        CONSOLE = "console", _("Console")
        COMMAND = "command", _("Command")

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CONSOLE)
    done = models.PositiveBigIntegerField(default=0, help_text="entries + records checked so far")
    total = models.PositiveBigIntegerField(default=0, help_text="entries + records to check")
    entries = models.PositiveBigIntegerField(default=0)
    checkpoints = models.PositiveBigIntegerField(default=0)
    records = models.PositiveBigIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    triggered_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def percent(self) -> int:
        if self.status in (self.Status.PASSED, self.Status.FAILED):
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.PASSED, self.Status.FAILED, self.Status.ERROR)
