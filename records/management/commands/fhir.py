import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import access as access_log
from audit.models import AccessEvent
from audit.services import record_access
from records.fhir import exporter, jsonio
from records.fhir.importer import import_bundle
from records.fhir.outcome import FhirError
from records.fhir.terms import as_uuid
from records.models import Patient


class Command(BaseCommand):
    help = (
        "FHIR R4: `fhir import FILE...` (Bundles, each all or nothing) and "
        "`fhir export [--patient ID] [--out FILE | --ndjson DIR]`."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser(
            "import", help="import transaction or collection Bundles (JSON), or NDJSON files"
        )
        imp.add_argument("files", nargs="+", help="a Bundle (.json), or a directory of NDJSON files")
        imp.add_argument("--author", default="fhir-import", help="who the ledger names as the writer")
        imp.add_argument("--json", action="store_true")
        exp = sub.add_parser("export", help="export the node (or one patient) as a Bundle or NDJSON files")
        exp.add_argument("--patient", help="a patient's id (UUID) or patient number")
        exp.add_argument("--out", help="write the Bundle here (default: standard output)")
        exp.add_argument("--ndjson", metavar="DIR", help="write one NDJSON file per resource type into DIR")
        exp.add_argument(
            "--provenance", action="store_true", help="add a Provenance per record (ledger entry)"
        )
        exp.add_argument("--no-attachment-data", action="store_true", help="attachments by URL, not inline")
        exp.add_argument("--base-url", default="", help="fullUrl base (default: urn:uuid: fullUrls)")
        exp.add_argument(
            "--no-validate",
            action="store_true",
            help="skip validating each resource with fhir.resources (faster)",
        )
        exp.add_argument("--json", action="store_true", help="print a JSON summary (with --out or --ndjson)")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    # import

    def _read(self, path: Path) -> dict:
        if path.is_dir():
            entries = []
            for file in sorted(path.glob("*.ndjson")):
                with file.open("rb") as handle:
                    for number, line in enumerate(handle, start=1):
                        if line.strip():
                            try:
                                entries.append({"resource": jsonio.loads(line)})
                            except FhirError as error:
                                raise CommandError(f"{file}:{number}: {error}", returncode=1) from None
            return {"resourceType": "Bundle", "type": "collection", "entry": entries}
        return jsonio.loads(path.read_bytes())

    def _import(self, options):
        as_json = options["json"]
        reports, failed = [], False
        for name in options["files"]:
            path = Path(name)
            if not path.exists():
                raise CommandError(f"{name}: no such file", returncode=2)
            started = time.perf_counter()
            try:
                result = import_bundle(self._read(path), author=options["author"])
            except FhirError as error:
                failed = True
                reports.append({"file": name, "ok": False, "issues": error.outcome()["issue"]})
                if not as_json:
                    self.stdout.write(f"{name}: REFUSED, nothing was imported")
                    for issue in error.issues:
                        self.stdout.write(f"  {issue}")
                continue
            summary = result.summary()
            seconds = time.perf_counter() - started
            reports.append({"file": name, "ok": True, "seconds": round(seconds, 3), **summary})
            if not as_json:
                self.stdout.write(
                    f"{name}: {summary['entries']} entries: {summary['created']} created, "
                    f"{summary['matched']} matched, {summary['updated']} updated, "
                    f"{summary['unchanged']} unchanged, {summary['skipped']} not stored ({seconds:.1f}s)"
                )
                for warning in summary["warnings"]:
                    self.stdout.write(f"  {warning}")
        if as_json:
            self.stdout.write(json.dumps({"ok": not failed, "files": reports}, sort_keys=True))
        if failed:
            sys.exit(1)

    # export

    def _patient(self, text: str) -> Patient:
        pk = as_uuid(text)
        patient = (
            Patient.objects.filter(pk=pk).first()
            if pk
            else Patient.objects.filter(patient_number=text.strip().upper()).first()
        )
        if patient is None:
            raise CommandError(f"no patient {text}", returncode=2)
        return patient

    def _export(self, options):
        if options["out"] and options["ndjson"]:
            raise CommandError("give --out or --ndjson, not both", returncode=2)
        ctx = exporter.export_context(
            base_url=options["base_url"], embed_attachments=not options["no_attachment_data"]
        )
        destination = "ndjson" if options["ndjson"] else "file" if options["out"] else "stdout"
        operator = access_log.command_line_user()
        if options["patient"]:
            patient = self._patient(options["patient"])
            record_access(
                user=operator,
                action=AccessEvent.Action.EXPORT,
                patient_id=patient.pk,
                object_type="Patient",
                object_id=str(patient.pk),
                detail={"command": "fhir export", "to": destination},
            )
            resources = exporter.patient_export(
                patient,
                ctx,
                provenance=options["provenance"],
                validate=not options["no_validate"],
            )
        else:
            access_log.record_bulk_export(
                user=operator, resource_type="all", detail={"command": "fhir export", "to": destination}
            )
            resources = exporter.node_export(
                ctx, provenance=options["provenance"], validate=not options["no_validate"]
            )
        started = time.perf_counter()
        if options["ndjson"]:
            counts = exporter.write_ndjson(resources, Path(options["ndjson"]))
            total, where = sum(counts.values()), options["ndjson"]
        elif options["out"]:
            counts = None
            with open(options["out"], "w", encoding="utf-8") as out:
                total = exporter.write_bundle(resources, out, base_url=options["base_url"])
            where = options["out"]
        else:
            raw = self.stdout

            class _Out:
                def write(self, text):
                    raw.write(text, ending="")

            exporter.write_bundle(resources, _Out(), base_url=options["base_url"])
            return
        seconds = time.perf_counter() - started
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": True,
                        "resources": total,
                        "by_type": counts,
                        "out": where,
                        "seconds": round(seconds, 3),
                    },
                    sort_keys=True,
                )
            )
        else:
            self.stdout.write(f"exported {total} resources to {where} ({seconds:.1f}s)")
