"""Reads for images: check a copy of an image against this node's watermark key and ledger."""

import base64
from dataclasses import dataclass

from ledger.models import Entry
from records.models import Attachment

from .codec import WatermarkError, verify
from .formats import ImageFormatError, load_image
from .keys import node_watermark_key
from .tamper import overlay_png


@dataclass
class ImageCheck:
    ok: bool
    reason: str = ""
    record: str | None = None
    ledger_entry: int | None = None
    entry_matches: bool | None = None
    on_this_node: bool = False
    damaged_fraction: float | None = None
    overlay_png: bytes | None = None
    patient_id: str | None = None

    @property
    def overlay_data_uri(self) -> str | None:
        return (
            "data:image/png;base64," + base64.b64encode(self.overlay_png).decode()
            if self.overlay_png
            else None
        )

    def as_dict(self, tamper_map_path: str | None = None) -> dict:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "record": self.record,
            "ledger_entry": self.ledger_entry,
            "entry_matches": self.entry_matches,
            "on_this_node": self.on_this_node,
            "damaged_fraction": self.damaged_fraction,
            "tamper_map": tamper_map_path,
        }


def check_image(
    content: bytes, declared_media_type: str | None = None, key: bytes | None = None
) -> ImageCheck:
    try:
        pixels, _meta = load_image(content, declared_media_type)
    except ImageFormatError as error:
        return ImageCheck(ok=False, reason=f"not a readable image: {error}")
    try:
        result = verify(pixels, key or node_watermark_key())
    except WatermarkError as error:
        return ImageCheck(ok=False, reason=f"no watermark of this node could be recovered ({error})")
    payload = result.payload
    check = ImageCheck(
        ok=True,
        record=str(payload.record_uuid),
        ledger_entry=payload.entry_index,
        damaged_fraction=round(float(result.tamper.fraction), 4),
        overlay_png=overlay_png(pixels, result.tamper),
    )
    attachment = Attachment.objects.filter(pk=payload.record_uuid).first()
    if attachment is not None:
        check.on_this_node = True
        check.patient_id = str(attachment.patient_id)
        entry = Entry.objects.filter(object_id=attachment.pk, index=payload.entry_index).first()
        check.entry_matches = entry is not None and payload.matches_entry_hash(bytes(entry.leaf_hash))
    return check
