"""Attached mining devices, the proof-of-work shares they found over ledger checkpoints, and
their health history."""

from django.conf import settings
from django.db import models


class Device(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"
        REVOKED = "revoked", "Revoked"

    class Kind(models.TextChoices):
        AXEOS = "axeos", "ESP-Miner / AxeOS (Bitaxe, LV06)"
        CGMINER = "cgminer", "cgminer / bmminer RPC (Antminer)"
        SOFTWARE = "software", "Software miner"
        UNKNOWN = "unknown", "Unknown"

    worker = models.CharField(
        max_length=128, unique=True, help_text="the Stratum worker name it authorizes as"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    model = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.UNKNOWN)
    host = models.CharField(max_length=255, blank=True, help_text="management address, for polling")
    web_port = models.PositiveIntegerField(default=80)
    rpc_port = models.PositiveIntegerField(default=4028)
    user_agent = models.CharField(max_length=255, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["worker"]


class Proof(models.Model):
    """One accepted share: an 80-byte header committing to a signed checkpoint, below its target."""

    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="proofs")
    checkpoint = models.ForeignKey("ledger.Checkpoint", on_delete=models.PROTECT, related_name="proofs")
    share_hash = models.CharField(max_length=64, unique=True)  # duplicates are refused across restarts too
    difficulty = models.CharField(max_length=40)  # decimal text: fractional difficulties are exact
    work = models.PositiveBigIntegerField(help_text="expected hashes: floor(difficulty * 2**32)")
    proof = models.TextField(help_text="canonical JSON of every field needed to re-check the share offline")
    received_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["checkpoint", "received_at"]),
            models.Index(fields=["device", "received_at"]),
        ]


class DeviceHealth(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="health")
    at = models.DateTimeField(db_index=True)
    reachable = models.BooleanField()
    error = models.CharField(max_length=255, blank=True)
    hashrate_ghs = models.FloatField(null=True)
    temperature_c = models.FloatField(null=True)
    power_w = models.FloatField(null=True)
    accepted = models.PositiveBigIntegerField(null=True)
    rejected = models.PositiveBigIntegerField(null=True)
    pool_url = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [models.Index(fields=["device", "-at"])]
