import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, OperationalError, ProgrammingError

from sync import partial, selectors, services
from sync.models import Peer

EXIT_PROBLEM, EXIT_CANNOT_RUN = 1, 2


class Command(BaseCommand):
    help = (
        "Mirror ledgers with other nodes: `peers add|list|revoke`, `run --peer URL_or_ID`, "
        "`export --out FILE [--for NODE]`, `import FILE`, `status`."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        peers = sub.add_parser("peers", help="the nodes this one syncs with")
        peer_sub = peers.add_subparsers(dest="peer_action", required=True)
        add = peer_sub.add_parser(
            "add", help="register a peer from the values `node info --json` prints there"
        )
        add.add_argument("--node-id", required=True)
        add.add_argument("--public-key", required=True)
        add.add_argument("--tier", required=True)
        add.add_argument("--url", default="")
        add.add_argument("--role", choices=Peer.Role.values, default=Peer.Role.PEER)
        downward = add.add_mutually_exclusive_group()
        downward.add_argument(
            "--partial",
            action="store_const",
            const=True,
            dest="partial",
            help="(a parent) send us only the entries about the patients we serve, each with its proof; "
            "(a child) it holds only those: rounds and bundles send it them, never our whole logs",
        )
        downward.add_argument(
            "--whole",
            action="store_const",
            const=False,
            dest="partial",
            help="mirror the peer's logs whole (the default for a new peer; unchanged when neither is given)",
        )
        add.add_argument("--json", action="store_true")
        listing = peer_sub.add_parser("list", help="every registered peer")
        listing.add_argument("--json", action="store_true")
        revoke = peer_sub.add_parser("revoke", help="refuse a peer from now on")
        revoke.add_argument("node_id")
        revoke.add_argument("--json", action="store_true")

        run = sub.add_parser("run", help="one sync round with a peer now")
        run.add_argument("--peer", required=True, help="the peer's URL or node id")
        run.add_argument("--batch-size", type=int, default=services.DEFAULT_BATCH_ENTRIES)
        run.add_argument("--throttle", type=float, default=0.0, help="seconds to wait between batches")
        run.add_argument("--json", action="store_true")

        export = sub.add_parser("export", help="write a signed bundle for a USB stick")
        export.add_argument("--out", required=True)
        export.add_argument("--for", dest="for_node", help="only what this peer lacked at the last exchange")
        export.add_argument(
            "--resend-own-log",
            action="store_true",
            help="--for a peer restored from an older backup: all of its own log we hold",
        )
        export.add_argument("--json", action="store_true")

        imported = sub.add_parser("import", help="apply a bundle (all of it, or nothing)")
        imported.add_argument("file")
        imported.add_argument("--json", action="store_true")

        refer = sub.add_parser("refer", help="send a child every entry about a patient from now on")
        refer.add_argument("--patient", required=True, help="the patient's UUID")
        refer.add_argument("--to", required=True, help="the child's node id or URL")
        refer.add_argument("--json", action="store_true")

        status = sub.add_parser("status", help="last success, lag and bytes moved per peer; forks")
        status.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        self.as_json = options.get("json", False)
        action = options["action"] if options["action"] != "peers" else f"peers_{options['peer_action']}"
        try:
            return getattr(self, f"_{action}")(options)
        except (services.Refused, partial.PartialRefused) as error:
            self._fail(EXIT_PROBLEM, str(error))
        except services.SyncError as error:
            self._fail(EXIT_CANNOT_RUN, str(error))
        except (OperationalError, ProgrammingError) as error:
            self._fail(EXIT_CANNOT_RUN, f"the database is not ready ({error}); run `manage.py migrate`")
        except DatabaseError as error:
            self._fail(EXIT_CANNOT_RUN, f"database error: {error}")

    def _fail(self, code: int, reason: str, **extra):
        if self.as_json:
            self.stdout.write(json.dumps({"ok": False, "error": reason, **extra}, sort_keys=True))
        else:
            self.stderr.write(reason)
        sys.exit(code)

    def _out(self, document: dict, text: str):
        self.stdout.write(json.dumps(document, sort_keys=True) if self.as_json else text)

    # peers

    def _peers_add(self, options):
        peer = services.add_peer(
            node_id=options["node_id"],
            public_key=options["public_key"],
            tier=options["tier"],
            url=options["url"],
            role=options["role"],
            partial=options["partial"],
        )
        facts = selectors.peer_facts(peer)
        self._out(
            {"ok": True, "peer": facts}, f"peer {peer.node_id} ({peer.role}, {peer.tier}) {peer.url or ''}"
        )

    def _refer(self, options):
        peer = selectors.find_peer(options["to"])
        if peer is None:
            self._fail(EXIT_CANNOT_RUN, f"no peer {options['to']}; register it first with `sync peers add`")
        try:
            served = partial.refer_patient(
                peer=peer, patient_id=options["patient"], referred_by="command line"
            )
        except ValidationError:
            self._fail(EXIT_CANNOT_RUN, f"{options['patient']!r} is not a patient id (a UUID)")
        self._out(
            {"ok": True, "peer": peer.node_id, "patient": str(served.patient_id), "referral": served.pk},
            f"patient {served.patient_id} referred to {peer.node_id}: its entries go there next round",
        )

    def _peers_list(self, options):
        peers = [selectors.peer_facts(peer) for peer in Peer.objects.all()]
        lines = []
        for p in peers:
            state = "REVOKED" if p["revoked"] else p["pairing"]
            in_part = "  (in part)" if p["partial"] or p["served_only"] else ""
            lines.append(f"{p['node_id']}  {p['role']:6}  {p['tier']:17}  {state:10}  {p['url']}{in_part}")
        self._out({"ok": True, "peers": peers}, "\n".join(lines) if lines else "no peers")

    def _peers_revoke(self, options):
        peer = services.revoke_peer(node_id=options["node_id"])
        self._out(
            {"ok": True, "revoked": peer.node_id}, f"revoked {peer.node_id}: it gets nothing from now on"
        )

    # rounds

    def _run(self, options):
        peer = selectors.find_peer(options["peer"])
        if peer is None:
            raise CommandError(
                f"no peer {options['peer']!r}; register it with `sync peers add`", returncode=2
            )
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1", returncode=2)

        def progress(message):
            if not self.as_json:
                self.stdout.write(message)
                self.stdout.flush()

        result = services.run_round(
            peer, max_entries=options["batch_size"], throttle=options["throttle"], progress=progress
        )
        summary = result.as_dict()
        text = (
            f"{'OK' if result.ok else 'PROBLEMS'}: pulled {result.pulled} entries in {result.batches_pulled} "
            f"batches, pushed {result.pushed} in {result.batches_pushed}; {result.bytes_sent} bytes sent, "
            f"{result.bytes_received} received; {result.behind} entries behind {peer.node_id}"
        )
        if result.problems:
            text += "\n" + "\n".join(f"PROBLEM {p}" for p in result.problems)
        self._out(summary, text)
        if not result.ok:
            sys.exit(EXIT_PROBLEM)

    # bundles

    def _export(self, options):
        if options["resend_own_log"] and not options["for_node"]:
            raise services.SyncError("--resend-own-log needs --for NODE")
        summary = services.export_bundle(
            out=options["out"], for_node=options["for_node"], resend_own_log=options["resend_own_log"]
        )
        self._out(
            {"ok": True, **summary},
            f"wrote {summary['entries']} entries of {len(summary['origins'])} logs in {summary['batches']} "
            f"batches"
            + (
                f" and {summary['served_entries']} entries about its patients, with their proofs"
                if summary["served_groups"]
                else ""
            )
            + f" ({summary['bytes']} bytes) to {summary['out']}",
        )

    def _import(self, options):
        summary = services.import_bundle(path=options["file"])
        self._out(
            {"ok": True, **summary},
            f"bundle from {summary['sender']}: {summary['batches']} batches checked, "
            f"{summary['applied']} new entries applied"
            + ("; caught up on our own log: writes are allowed again" if summary["caught_up"] else "")
            + (f"; {summary['catching_up']}" if summary["catching_up"] else ""),
        )

    # status

    def _status(self, options):
        facts = selectors.status()
        if self.as_json:
            self.stdout.write(json.dumps({"ok": not facts["unresolved_forks"], **facts}, sort_keys=True))
        else:
            self.stdout.write(f"node {facts['node_id']} ({facts['tier']}), {len(facts['origins'])} logs held")
            for p in facts["peers"]:
                lag = (
                    "unknown"
                    if p["lag_entries"] is None
                    else f"{p['lag_entries']} behind, {p['ahead_entries']} ahead"
                )
                revoked = " REVOKED" if p["revoked"] else ""
                clock = (
                    "clock offset unknown"
                    if p["clock_offset"] is None
                    else f"clock {p['clock_offset']:+d} s vs ours"
                )
                self.stdout.write(
                    f"{p['node_id']} {p['role']} {p['url'] or '(no url)'}{revoked}\n"
                    f"  last success {p['last_success'] or 'never'}; "
                    f"last contact {p['last_contact'] or 'never'}; lag {lag}; "
                    f"{p['bytes_sent']} bytes sent, {p['bytes_received']} received; {p['rounds']} rounds; "
                    f"{clock}" + (f"\n  last error: {p['last_error']}" if p["last_error"] else "")
                )
            for fork in facts["forks"]:
                if not fork["resolved"]:
                    self.stdout.write(f"FORK {fork['origin']} from {fork['source']}: {fork['reason']}")
        if facts["unresolved_forks"]:
            sys.exit(EXIT_PROBLEM)
