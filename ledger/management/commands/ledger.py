import argparse
import json
import os
import sys
import uuid

from django.core.management.base import BaseCommand, CommandError

from ledger import bundle, catchup, services, verification


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


class Command(BaseCommand):
    help = "The ledger: `verify`, `checkpoint`, `proof --record UUID --out FILE`, `catch-up [--finish]`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser(
            "verify", help="recompute every hash, checkpoint and record; report each problem"
        )
        verify.add_argument("--json", action="store_true")
        verify.add_argument(
            "--workers",
            type=_positive,
            default=os.cpu_count() or 1,
            help="processes sharing the work, each on its own database connection (default: one per CPU)",
        )
        checkpoint = sub.add_parser("checkpoint", help="seal a signed checkpoint of this node's log now")
        checkpoint.add_argument("--json", action="store_true")
        proof = sub.add_parser("proof", help="write an offline proof bundle for one record")
        proof.add_argument("--record", required=True)
        proof.add_argument("--out", required=True)
        proof.add_argument("--json", action="store_true")
        catch_up = sub.add_parser(
            "catch-up", help="after a restore: whether writes wait for a sync round (--finish: stop waiting)"
        )
        catch_up.add_argument(
            "--finish",
            action="store_true",
            help="allow writes now; only when no peer can hold more of this node's log (it would fork)",
        )
        catch_up.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action'].replace('-', '_')}")(options)

    def _catch_up(self, options):
        since = catchup.catching_up_since()
        finished = bool(options["finish"]) and catchup.clear_catching_up()
        state = {"catching_up": since is not None and not finished, "since": since, "finished": finished}
        if options["json"]:
            self.stdout.write(json.dumps(state, sort_keys=True))
        elif finished:
            self.stdout.write("catching up ended by the operator: this node writes again")
        elif since is None:
            self.stdout.write("not catching up: this node writes")
        else:
            self.stdout.write(
                f"catching up since a restore ({since.get('reason', '?')}): writes wait for a sync round "
                "with the parent (`sync run`)"
            )

    def _verify(self, options):
        progress = None if options["json"] else (lambda what, n: self.stderr.write(f"  {n} {what} checked"))
        report = verification.verify_all(progress, workers=options["workers"])
        # Kept like a console run; each problem becomes (or touches) a tamper alert in the console.
        from audit.services import record_command_verification

        record_command_verification(report=report.as_dict())
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
        else:
            for problem in report.problems:
                self.stdout.write(f"PROBLEM {problem}")
            verdict = "OK" if report.ok else f"{len(report.problems)} PROBLEM(S)"
            self.stdout.write(
                f"{verdict}: {report.entries} entries, {report.checkpoints} checkpoints, "
                f"{report.records} records checked"
            )
        if not report.ok:
            sys.exit(1)

    def _checkpoint(self, options):
        try:
            checkpoint = services.seal_checkpoint()
        except services.CheckpointRefused as error:
            self.stderr.write(str(error))
            sys.exit(1)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "origin": checkpoint.origin,
                        "size": checkpoint.size,
                        "root_hash": bytes(checkpoint.root_hash).hex(),
                        "note": checkpoint.note,
                    }
                )
            )
        else:
            self.stdout.write(checkpoint.note)

    def _proof(self, options):
        try:
            record = uuid.UUID(options["record"])
        except ValueError:
            raise CommandError(f"{options['record']!r} is not a UUID", returncode=2) from None
        try:
            document = bundle.build_bundle(record)
        except bundle.BundleError as error:
            raise CommandError(str(error), returncode=2) from None
        # Imported here: the ledger does not depend on the audit app except to say who took a proof.
        from audit.access import command_line_user, patient_of_record
        from audit.services import record_access

        record_access(
            user=command_line_user(),
            action="proof_download",
            patient_id=patient_of_record(record),
            object_type="Record",
            object_id=str(record),
            detail={"command": "ledger proof", "entries": len(document["entries"])},
        )
        try:
            with open(options["out"], "wb") as handle:
                handle.write(bundle.serialize(document))
        except OSError as error:
            raise CommandError(f"cannot write {options['out']}: {error}", returncode=2) from None
        summary = {"record": str(record), "out": options["out"], "entries": len(document["entries"])}
        self.stdout.write(
            json.dumps(summary)
            if options["json"]
            else f"wrote {summary['entries']} entries with proofs to {options['out']}"
        )
