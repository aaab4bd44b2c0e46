"""The search index: one row per chunk of a record, with its text, its folded text for full-text
search, and its embedding as a float32 blob. Rows are never updated: re-indexing a record deletes its
chunks and inserts new ones, so the full-text triggers and the in-memory vector cache only see inserts
and deletes."""

from django.db import models


class Chunk(models.Model):
    class Category(models.TextChoices):
        # What a role must be allowed to read to retrieve the chunk (accounts.roles capabilities).
        DEMOGRAPHICS = "demographics"
        CLINICAL = "clinical"

    id = models.BigAutoField(primary_key=True)
    record_id = models.UUIDField(db_index=True)
    record_type = models.CharField(max_length=32, help_text="ledger object type, e.g. ClinicalNote")
    kind = models.CharField(max_length=16, help_text="note, condition, medication, observation, ...")
    category = models.CharField(max_length=16, choices=Category.choices)
    patient_id = models.UUIDField(db_index=True)
    code = models.CharField(max_length=32, blank=True, help_text="ICD-10 or LOINC code, if any")
    date = models.DateField(null=True, blank=True)
    origin = models.CharField(max_length=64, blank=True, help_text="origin of the record's latest entry")
    entry_index = models.BigIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    search_text = models.TextField(help_text="folded text that the full-text index covers")
    vector = models.BinaryField(help_text="float32 little-endian, L2-normalised")

    class Meta:
        indexes = [
            models.Index(fields=["category", "kind"]),
            models.Index(fields=["date"]),
        ]


class IndexState(models.Model):
    """One row: bumped on every change to the chunks, so each process knows when its vector cache
    is stale without reading the whole table."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    generation = models.BigIntegerField(default=0)
