import json
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError

from audit import access as access_log
from audit import anchoring, fhir_audit, selectors
from audit.models import AccessEvent
from audit.services import record_access
from ledger.selectors import self_node_id
from records.models import Patient


class Command(BaseCommand):
    help = (
        "The audit trail: `accesses [--user U] [--patient ID] [--export FILE]`, `verify-chain [--json]`, "
        "`anchor [--json]`."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        accesses = sub.add_parser("accesses", help="list the access log, or export it as FHIR AuditEvents")
        accesses.add_argument("--user", help="only this username")
        accesses.add_argument("--patient", help="only accesses to this patient (id or patient number)")
        accesses.add_argument("--export", metavar="FILE", help="write a FHIR R4 Bundle of AuditEvents here")
        accesses.add_argument("--limit", type=int, default=50, help="rows to list (default 50)")
        accesses.add_argument("--json", action="store_true")
        verify = sub.add_parser("verify-chain", help="recompute the access log's hash chain and anchors")
        verify.add_argument("--json", action="store_true")
        anchor = sub.add_parser("anchor", help="sign the access log's head into the ledger now")
        anchor.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action'].replace('-', '_')}")(options)

    def _patient_id(self, text):
        try:
            return uuid.UUID(text)
        except ValueError:
            found = Patient.objects.filter(patient_number=text.strip().upper()).values_list("pk", flat=True)
            if not found:
                raise CommandError(f"no patient {text}", returncode=2) from None
            return found[0]

    def _accesses(self, options):
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1", returncode=2)
        patient_id = self._patient_id(options["patient"]) if options["patient"] else None
        events = selectors.accesses(username=options["user"] or None, patient_id=patient_id)
        if options["export"]:
            return self._export(options, events, patient_id)
        rows = list(events[: options["limit"]])
        if options["json"]:
            listed = [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "user": e.username,
                    "role": e.role,
                    "action": e.action,
                    "patient_id": str(e.patient_id) if e.patient_id else None,
                    "object": f"{e.object_type}/{e.object_id}" if e.object_type else "",
                    "remote_addr": e.remote_addr,
                }
                for e in rows
            ]
            self.stdout.write(json.dumps({"events": listed}, sort_keys=True))
            return
        for e in rows:
            self.stdout.write(
                f"{e.at:%Y-%m-%d %H:%M:%S} {e.username or '-'} ({e.role}) {e.action} "
                f"{e.patient_id or ''} {e.object_type}/{e.object_id} {e.remote_addr}".rstrip()
            )
        self.stdout.write(f"{len(rows)} event(s) shown, newest first")

    def _export(self, options, events, patient_id):
        operator = access_log.command_line_user()
        detail = {"command": "audit accesses --export"}
        if options["user"]:
            detail["user"] = options["user"]
        if patient_id:
            detail["patient"] = str(patient_id)
        counted = [0]

        def counting(rows):
            for row in rows:
                counted[0] += 1
                yield row

        newest = AccessEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        try:
            with open(options["export"], "w", encoding="utf-8") as out:
                record_access(
                    user=operator, action=AccessEvent.Action.EXPORT, object_type="AccessLog", detail=detail
                )
                rows = counting(events.filter(id__lte=newest).order_by("id").iterator(chunk_size=2000))
                for chunk in fhir_audit.bundle_chunks(rows, node_id=self_node_id()):
                    out.write(chunk)
        except OSError as error:
            raise CommandError(f"cannot write {options['export']}: {error}", returncode=2) from None
        count = counted[0]
        summary = {"ok": True, "out": options["export"], "audit_events": count}
        self.stdout.write(
            json.dumps(summary) if options["json"] else f"wrote {count} AuditEvent(s) to {options['export']}"
        )

    def _verify_chain(self, options):
        check = selectors.verify_access_chain()
        report = {
            "ok": check.ok,
            "checked": check.checked,
            "problem": check.problem,
            "event_id": check.event_id,
            "anchored": check.anchored,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        elif check.ok:
            anchored = f", newest signed anchor covers {check.anchored}" if check.anchored is not None else ""
            self.stdout.write(f"OK: {check.checked} access events chained{anchored}")
        else:
            where = f" (event #{check.event_id})" if check.event_id else ""
            self.stdout.write(f"PROBLEM {check.problem}{where}; {check.checked} events verified before it")
        if not check.ok:
            sys.exit(1)

    def _anchor(self, options):
        try:
            anchor = anchoring.anchor_access_log()
        except anchoring.AnchorRefused as error:
            self.stderr.write(str(error))
            sys.exit(1)
        if options["json"]:
            self.stdout.write(
                json.dumps({"count": anchor.count, "hash": anchor.hash, "ledger_index": anchor.ledger_index})
            )
        else:
            self.stdout.write(anchor.note)
