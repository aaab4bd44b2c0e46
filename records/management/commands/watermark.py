import json
import sys
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ledger.models import Entry
from records.imaging.codec import WatermarkError, WatermarkPayload, embed
from records.imaging.formats import ImageFormatError, load_image, save_image
from records.imaging.keys import node_watermark_key
from records.imaging.selectors import check_image
from records.imaging.services import alert_if_tampered


class Command(BaseCommand):
    help = "Watermark images: `embed --record UUID IN OUT`, `verify IN [--json] [--tamper-map PNG]`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        embed_parser = sub.add_parser(
            "embed", help="mark IN with a record and its latest ledger entry, write OUT"
        )
        embed_parser.add_argument("--record", required=True)
        embed_parser.add_argument("input")
        embed_parser.add_argument("output")
        embed_parser.add_argument("--json", action="store_true")
        verify_parser = sub.add_parser(
            "verify", help="recover the record and entry from IN, map altered blocks"
        )
        verify_parser.add_argument("input")
        verify_parser.add_argument(
            "--tamper-map", help="where to write the overlay PNG (default IN.tamper.png)"
        )
        verify_parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            content = Path(options["input"]).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {options['input']}: {error}", returncode=2) from None
        if options["action"] == "embed":
            return self._embed(content, options)
        return self._verify(content, options)

    def _embed(self, content: bytes, options):
        try:
            record = uuid.UUID(options["record"])
        except ValueError:
            raise CommandError(f"{options['record']!r} is not a UUID", returncode=2) from None
        entry = Entry.objects.filter(object_id=record).order_by("-hlc").first()
        if entry is None:
            raise CommandError(f"no ledger entry names record {record}", returncode=2)
        try:
            pixels, meta = load_image(content)
            marked = save_image(
                embed(
                    pixels,
                    WatermarkPayload(record, entry.index, bytes(entry.leaf_hash)),
                    node_watermark_key(),
                ),
                meta,
            )
        except (ImageFormatError, WatermarkError) as error:
            raise CommandError(str(error), returncode=2) from None
        Path(options["output"]).write_bytes(marked)
        summary = {
            "ok": True,
            "record": str(record),
            "ledger_entry": entry.index,
            "out": options["output"],
            "media_type": meta.media_type,
            "conversion": meta.conversion_reason,
        }
        self.stdout.write(
            json.dumps(summary)
            if options["json"]
            else f"marked {options['output']} with record {record}, ledger entry #{entry.index}"
        )

    def _verify(self, content: bytes, options):
        result = check_image(content)
        alert_if_tampered(check=result, content=content, source=f"watermark verify {options['input']}")
        tamper_path = None
        if result.ok:
            tamper_path = options["tamper_map"] or f"{options['input']}.tamper.png"
            Path(tamper_path).write_bytes(result.overlay_png)
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(tamper_path), sort_keys=True))
        elif result.ok:
            self.stdout.write(
                f"record {result.record}, ledger entry #{result.ledger_entry}, "
                f"altered {result.damaged_fraction:.1%} of the image; tamper map: {tamper_path}"
            )
        else:
            self.stdout.write(f"NOT VERIFIED: {result.reason}")
        if not result.ok:
            sys.exit(1)
