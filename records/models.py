"""Clinical records, aligned with FHIR R4 resources (Patient, Encounter, Observation, Condition,
MedicationRequest, DocumentReference for attachments, and free-text notes).

Rows are written only by records.services, which appends each change to the ledger in the same
transaction. Measured values are Decimals (never floats) so that their canonical JSON is exact.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from records.ids import uuid7


class ClinicalRecord(models.Model):
    """Fields every ledgered record carries."""

    # Time-ordered (records.ids says why, and why showing the creation time in the id is acceptable).
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    origin = models.CharField(max_length=64, help_text="node id that created the record")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True


class Patient(ClinicalRecord):
    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    patient_number = models.CharField(max_length=32, unique=True)
    given_name = models.CharField(_("given name"), max_length=100)
    family_name = models.CharField(_("family name"), max_length=100)
    sex = models.CharField(_("sex"), max_length=8, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"))
    birth_date_estimated = models.BooleanField(_("birth date estimated"), default=False)
    village = models.CharField(_("village"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    # Lower-cased, accent-free name used for search and duplicate detection.
    search_name = models.CharField(max_length=210, db_index=True, editable=False)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged"
    )

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [models.Index(fields=["birth_date"]), models.Index(fields=["phone"])]

    def __str__(self):
        return f"{self.given_name} {self.family_name} ({self.patient_number})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Encounter(ClinicalRecord):
    class Kind(models.TextChoices):
        OUTPATIENT = "outpatient", _("Outpatient visit")
        ANTENATAL = "antenatal", _("Antenatal care")
        FOLLOW_UP = "follow_up", _("Follow-up")
        EMERGENCY = "emergency", _("Emergency")
        HOME_VISIT = "home_visit", _("Home visit")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters")
    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices, default=Kind.OUTPATIENT)
    reason = models.CharField(_("reason for visit"), max_length=255, blank=True)
    started_at = models.DateTimeField(_("date"))
    practitioner = models.CharField(max_length=150, help_text="username of the clinician")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["patient", "-started_at"])]


class Observation(ClinicalRecord):
    class Category(models.TextChoices):
        VITAL_SIGNS = "vital-signs", _("Vital signs")
        LABORATORY = "laboratory", _("Laboratory")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="observations")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="observations"
    )
    category = models.CharField(max_length=16, choices=Category.choices)
    code = models.CharField(max_length=32, help_text="LOINC code where known, else a local code")
    display = models.CharField(max_length=120)
    value_decimal = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    value_text = models.CharField(max_length=255, blank=True)
    unit = models.CharField(max_length=32, blank=True, help_text="UCUM unit")
    effective_at = models.DateTimeField()

    class Meta:
        ordering = ["-effective_at"]
        indexes = [models.Index(fields=["patient", "code", "-effective_at"])]


class Condition(ClinicalRecord):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        RESOLVED = "resolved", _("Resolved")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="conditions")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="conditions"
    )
    icd10_code = models.CharField(max_length=8)
    display = models.CharField(max_length=200)
    clinical_status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    onset_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class MedicationRequest(ClinicalRecord):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        STOPPED = "stopped", _("Stopped")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medication_requests")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="medication_requests"
    )
    medication = models.CharField(_("medication"), max_length=200)
    dose = models.CharField(_("dose"), max_length=100, blank=True)
    frequency = models.CharField(_("frequency"), max_length=100, blank=True)
    duration_days = models.PositiveIntegerField(_("days"), null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    prescriber = models.CharField(max_length=150)

    class Meta:
        ordering = ["-created_at"]


class ClinicalNote(ClinicalRecord):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="notes")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="notes"
    )
    text = models.TextField(_("note"))
    author = models.CharField(max_length=150)

    class Meta:
        ordering = ["-created_at"]


class Attachment(ClinicalRecord):
    class WatermarkStatus(models.TextChoices):
        NOT_APPLICABLE = "n/a", _("Not an image")
        PENDING = "pending", _("Watermark pending")
        MARKED = "marked", _("Watermarked")
        FAILED = "failed", _("Watermark failed")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="attachments")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    title = models.CharField(_("title"), max_length=200)
    file = models.FileField(upload_to="attachments/%Y/%m/")
    media_type = models.CharField(max_length=100)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    watermark_status = models.CharField(max_length=8, choices=WatermarkStatus.choices)
    watermark_detail = models.CharField(
        max_length=255, blank=True, help_text="why it failed, or a conversion"
    )
    uploaded_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-created_at"]


class PatientNumberSequence(models.Model):
    """The next sequence number this node hands out; one row per node prefix."""

    prefix = models.CharField(max_length=16, primary_key=True)
    next_value = models.PositiveBigIntegerField(default=1)


class DuplicateDismissal(models.Model):
    """A clerk's confirmation that a newly registered patient is not one of the suggested matches."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    candidate = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    confirmed_at = models.DateTimeField(auto_now_add=True)


class PendingApply(models.Model):
    """A received entry whose record could not be written yet (its patient or encounter has not
    arrived from its own origin); retried after every ingest."""

    origin = models.CharField(max_length=64)
    index = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["origin", "index"], name="pending_apply_entry")]
