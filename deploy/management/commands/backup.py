import json
import os
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deploy import backupcrypt, services


class Command(BaseCommand):
    help = (
        "Encrypted node backups: `keygen` (on the operator's machine), `create --out DIR` (nightly), "
        "`restore FILE --key KEYFILE` (into an empty node). Exit 1: the backup was refused (changed, "
        "wrong key); exit 2: could not run (missing file, node not empty)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        keygen = sub.add_parser(
            "keygen", help="make the operator's key pair; keep the private key OFF the node"
        )
        keygen.add_argument("--private-out", required=True)
        keygen.add_argument("--public-out", required=True)
        create = sub.add_parser("create", help="write one encrypted backup file into DIR")
        create.add_argument("--out", default=None, help="directory (default: the node's backup directory)")
        create.add_argument("--recipient", default=None, help="the operator's public key (PEM)")
        create.add_argument(
            "--keep", type=int, default=None, help="keep only the newest N (default: the tier profile's)"
        )
        restore = sub.add_parser("restore", help="restore a backup into this EMPTY node")
        restore.add_argument("file")
        restore.add_argument("--key", required=True, help="the operator's private key (PEM)")
        for parser_ in (keygen, create, restore):
            parser_.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    def _say(self, options, summary: dict, text: str) -> None:
        self.stdout.write(json.dumps(summary, sort_keys=True) if options["json"] else text)

    def _keygen(self, options):
        private, public = backupcrypt.generate_keypair()
        for path, data, mode in (
            (options["private_out"], private, 0o600),
            (options["public_out"], public, 0o644),
        ):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            except OSError as error:
                raise CommandError(f"cannot create {path}: {error.strerror}", returncode=2) from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        self._say(
            options,
            {"private_key": options["private_out"], "public_key": options["public_out"]},
            f"wrote {options['private_out']} (keep it off the node) and {options['public_out']} "
            f"(copy it to the node as {services.recipient_path()})",
        )

    def _create(self, options):
        out = Path(options["out"]) if options["out"] else services.backup_dir()
        try:
            keep = options["keep"] or settings.PROFILE.backup_keep
            summary = services.create_backup(out_dir=out, recipient=options["recipient"], keep=keep)
        except services.BackupError as error:
            raise CommandError(str(error), returncode=2) from None
        self._say(
            options,
            summary,
            f"wrote {summary['path']} ({summary['bytes']} bytes, log size {summary['log_size']})",
        )

    def _restore(self, options):
        try:
            summary = services.restore_backup(path=Path(options["file"]), key_path=Path(options["key"]))
        except services.BackupError as error:
            refused = str(error).startswith("refused")
            self.stderr.write(str(error))
            sys.exit(1 if refused else 2)
        call_command("migrate", verbosity=0)  # the backup may predate this version's schema
        self._say(
            options,
            summary,
            f"restored node {summary['node_id']} (log size {summary['log_size']}, "
            f"{summary['restored_media_files']} media files); run `ledger verify`, then `sync run` with the "
            "parent: writes are refused until that round has brought back what peers hold of this node's log",
        )
