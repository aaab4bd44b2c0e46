"""Writes for ASIC proofs: device decisions, accepted shares, health readings."""

import contextlib
import json

from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.canonical import canonical_json
from ledger.models import Checkpoint
from ledger.note import note_hash
from ledger.selectors import self_node_id

from .models import Device, DeviceHealth, Proof
from .stratum.proof import verify_proof
from .stratum.vardiff import classify


class DeviceError(ValueError):
    pass


def authorize_device(*, worker: str, user_agent: str) -> str:
    """'ok' if approved, 'pending' (registered, awaiting approval) if new, 'refused' if revoked."""
    if not worker or len(worker) > 128:
        return "refused"
    device, created = Device.objects.get_or_create(
        worker=worker, defaults={"user_agent": user_agent[:255], "kind": _kind_for(user_agent)}
    )
    device.last_seen = timezone.now()
    if user_agent and device.user_agent != user_agent[:255]:
        device.user_agent = user_agent[:255]
    device.save(update_fields=["last_seen", "user_agent"])
    return {"approved": "ok", "pending": "pending"}.get(device.status, "refused")


_KIND_BY_PROFILE = {
    "bm13xx": Device.Kind.AXEOS,
    "antminer": Device.Kind.CGMINER,
    "software": Device.Kind.SOFTWARE,
}


def _kind_for(user_agent: str) -> str:
    return _KIND_BY_PROFILE.get(classify(user_agent or "").name, Device.Kind.UNKNOWN)


def decide_device(
    *,
    worker: str,
    approve: bool,
    user=None,
    model: str = "",
    host: str = "",
    kind: str = "",
    web_port: int | None = None,
    rpc_port: int | None = None,
) -> Device:
    """Approve (or revoke) a device by worker name; an unknown worker is registered on the spot."""
    device, _ = Device.objects.get_or_create(worker=worker)
    device.status = Device.Status.APPROVED if approve else Device.Status.REVOKED
    device.decided_by, device.decided_at = user, timezone.now()
    if model:
        device.model = model
    if host:
        device.host = host
    if kind:
        if kind not in Device.Kind.values:
            raise DeviceError(f"unknown device kind {kind!r}")
        device.kind = kind
    for name, port in (("web_port", web_port), ("rpc_port", rpc_port)):
        if port is not None:
            if not 1 <= port <= 65535:
                raise DeviceError(f"{name} {port} is not a TCP port")
            setattr(device, name, port)
    device.save()
    return device


def record_proof(proof: dict) -> bool:
    """Store a share the Stratum server accepted, after checking it again here: it must rebuild to a
    header under its target, commit to a checkpoint this node signed, and name this node."""
    check = verify_proof(proof)
    if not check.ok or check.node_id != self_node_id():
        return False
    checkpoint = _checkpoint_by_hash(check.checkpoint, proof.get("job_id"))
    device = Device.objects.filter(worker=proof.get("worker"), status=Device.Status.APPROVED).first()
    if checkpoint is None or device is None:
        return False
    try:
        with transaction.atomic():
            Proof.objects.create(
                device=device,
                checkpoint=checkpoint,
                share_hash=check.hash,
                difficulty=str(proof["difficulty"]),
                work=check.work,
                proof=canonical_json(proof).decode("utf-8"),
                received_at=timezone.now(),  # the engine's received_at is whole seconds; keep ms here
            )
    except IntegrityError:  # the same share again (a replay, or a restart): not new work
        return False
    return True


def _checkpoint_by_hash(hash_hex: str | None, job_id: object = None) -> Checkpoint | None:
    """This node's checkpoint whose note hashes to `hash_hex` (the share's prevhash), or None.

    The share is bound to the checkpoint of the job it names, which need not be the newest one: the
    server keeps accepting shares for its last few jobs, and checkpoints may be sealed faster than jobs
    are published. Our job ids are tree sizes in hex, so the job id names the one candidate; the hash,
    not the id, decides. Any other id falls back to the newest 16 checkpoints.
    """
    if not hash_hex:
        return None
    mine = Checkpoint.objects.filter(origin=self_node_id())
    size = None
    if isinstance(job_id, str) and 0 < len(job_id) <= 16:
        with contextlib.suppress(ValueError):
            size = int(job_id, 16)
    for candidates in (mine.filter(size=size) if size is not None else [], mine.order_by("-size")[:16]):
        for checkpoint in candidates:
            if note_hash(checkpoint.note).hex() == hash_hex:
                return checkpoint
    return None


def record_health(*, device: Device, reading: dict) -> DeviceHealth:
    return DeviceHealth.objects.create(
        device=device,
        at=timezone.now(),
        reachable=bool(reading.get("reachable")),
        error=str(reading.get("error", ""))[:255],
        hashrate_ghs=reading.get("hashrate_ghs"),
        temperature_c=reading.get("temperature_c"),
        power_w=reading.get("power_w"),
        accepted=reading.get("accepted"),
        rejected=reading.get("rejected"),
        pool_url=str(reading.get("pool_url", ""))[:255],
    )


def proof_json(proof: Proof) -> dict:
    return json.loads(proof.proof)


def poll_devices() -> list[DeviceHealth]:
    """Poll every approved device that has a management address, and keep each reading."""
    import asyncio

    from .devices import poll

    devices = list(
        Device.objects.filter(status=Device.Status.APPROVED)
        .exclude(host="")
        .exclude(kind__in=[Device.Kind.SOFTWARE, Device.Kind.UNKNOWN])
    )

    async def poll_all():
        return await asyncio.gather(
            *(poll(d.host, d.kind, web_port=d.web_port, rpc_port=d.rpc_port) for d in devices)
        )

    readings = asyncio.run(poll_all()) if devices else []
    return [record_health(device=d, reading=r.to_dict()) for d, r in zip(devices, readings, strict=True)]


def point_device(*, worker: str, stratum_host: str, stratum_port: int) -> Device:
    """Point a registered device at this node's Stratum server (AxeOS settings or cgminer pools)."""
    import asyncio

    from .devices import point_at_node

    device = Device.objects.filter(worker=worker).first()
    if device is None or not device.host or device.kind not in (Device.Kind.AXEOS, Device.Kind.CGMINER):
        raise DeviceError(f"{worker!r} is not a registered AxeOS or cgminer device with a management address")
    asyncio.run(
        point_at_node(
            device.host,
            device.kind,
            stratum_host=stratum_host,
            stratum_port=stratum_port,
            worker=worker,
            web_port=device.web_port,
            rpc_port=device.rpc_port,
        )
    )
    return device
