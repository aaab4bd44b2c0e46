import argparse
import asyncio
import json
import signal
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from asicproof import selectors, services
from asicproof.models import Device


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 2**32:  # finite too: nan and inf fail this
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 2**32]")
    return value


class Command(BaseCommand):
    help = "ASIC proofs: serve, mine, devices, approve, revoke, validate."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        serve = sub.add_parser("serve", help="run the Stratum v1 server that devices point at")
        serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - devices reach the node over the LAN
        serve.add_argument("--port", type=int, default=3333)
        serve.add_argument(
            "--proof-difficulty",
            type=_positive,
            default=None,
            help="starting share difficulty of the tier's ASIC class (default: asic.proof_difficulty "
            "of the tier profile)",
        )
        mine = sub.add_parser(
            "mine", help="a software miner (ESP-Miner-like on the wire), hashing on the CPU"
        )
        mine.add_argument("--url", default="stratum+tcp://127.0.0.1:3333")
        mine.add_argument("--worker", default="softminer")
        mine.add_argument("--style", choices=["esp", "cpuminer"], default="esp")
        mine.add_argument(
            "--shares", type=int, default=0, help="stop after this many accepted shares (0: never)"
        )
        mine.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
        mine.add_argument("--json", action="store_true")
        for name, help_text in (
            ("approve", "let a device mine for this node"),
            ("revoke", "refuse a device"),
        ):
            decide = sub.add_parser(name, help=help_text)
            decide.add_argument("worker")
            decide.add_argument("--model", default="")
            decide.add_argument("--host", default="", help="management address, for polling")
            decide.add_argument("--kind", default="", choices=["", *Device.Kind.values])
        devices = sub.add_parser("devices", help="poll the attached devices (pyasic) and list them")
        devices.add_argument("--no-poll", action="store_true", help="list only, do not contact the devices")
        devices.add_argument("--json", action="store_true")
        point = sub.add_parser("point", help="point a device at this node's Stratum server")
        point.add_argument("worker")
        point.add_argument("--stratum-host", required=True, help="this node's address as the device sees it")
        point.add_argument("--stratum-port", type=int, default=3333)
        for name in ("approve", "revoke"):
            sub.choices[name].add_argument("--web-port", type=int, default=80)
            sub.choices[name].add_argument("--rpc-port", type=int, default=4028)
        validate = sub.add_parser("validate", help="a proof session: mine for N seconds, re-verify, report")
        validate.add_argument("--seconds", type=float, required=True)
        validate.add_argument(
            "--software",
            action="store_true",
            help="run an in-process server and software miner (otherwise: watch the devices already mining)",
        )
        validate.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    def _serve(self, options):
        from asicproof.backend import DjangoBackend
        from asicproof.serving import server_config
        from asicproof.stratum.server import StratumServer

        config = server_config(
            host=options["host"], port=options["port"], proof_difficulty=options["proof_difficulty"]
        )

        async def run():
            backend = DjangoBackend()
            await backend.refresh()
            server = StratumServer(backend, config)
            await server.start()
            poller = asyncio.create_task(backend.poll_forever())
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            self.stdout.write(f"stratum server listening on {options['host']}:{server.port}")
            self.stdout.flush()
            await stop.wait()
            poller.cancel()
            await server.close()
            self.stdout.write("stratum server stopped")

        asyncio.run(run())

    def _mine(self, options):
        from asicproof.stratum.miner import MinerConfig, mine

        try:
            config = MinerConfig.from_url(
                options["url"],
                worker=options["worker"],
                style=options["style"],
                max_shares=options["shares"] or None,
                max_seconds=options["seconds"] or None,
            )
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from None
        forever = not (options["shares"] or options["seconds"])
        while True:
            try:
                stats = asyncio.run(mine(config))
            except OSError as error:  # the server is not up (yet), or went away
                if not forever:
                    raise CommandError(f"cannot reach {options['url']}: {error}", returncode=2) from None
                self.stderr.write(f"cannot reach {options['url']} ({error}); retrying in 5 s")
                time.sleep(5)
                continue
            if not forever or stats.authorized is False:
                break
            time.sleep(1)  # the connection ended: reconnect
        summary = {
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "submitted": stats.submitted,
            "hashrate": round(stats.hashrate),
            "seconds": round(stats.elapsed, 2),
            "authorized": stats.authorized,
        }
        self.stdout.write(
            json.dumps(summary)
            if options["json"]
            else f"{stats.accepted} shares accepted, {stats.rejected} rejected, {summary['hashrate']} H/s"
        )
        if stats.authorized is False:
            sys.exit(1)

    def _approve(self, options, approve=True):
        try:
            device = services.decide_device(
                worker=options["worker"],
                approve=approve,
                model=options["model"],
                host=options["host"],
                kind=options["kind"],
                web_port=options["web_port"],
                rpc_port=options["rpc_port"],
            )
        except services.DeviceError as error:
            raise CommandError(str(error), returncode=2) from None
        self.stdout.write(f"{device.worker}: {device.get_status_display()}")

    def _revoke(self, options):
        return self._approve(options, approve=False)

    def _validate(self, options):
        from django.utils import timezone

        from asicproof.sessions import session_report

        if options["seconds"] <= 0:
            raise CommandError("--seconds must be positive", returncode=2)
        started = timezone.now()
        if options["software"]:
            asyncio.run(_software_session(options["seconds"]))
        else:
            import time

            time.sleep(options["seconds"])
        report = session_report(started, timezone.now())
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            timing = report["time_per_proof_s"]
            self.stdout.write(
                f"{report['proofs_found']} proofs in {report['seconds']} s, "
                f"{report['proofs_verified']} verified (rate {report['verification_rate']}); "
                f"time per proof mean {timing['mean']} s, p50 {timing['p50']} s, p95 {timing['p95']} s; "
                f"effective {report['effective_hashrate_hs']} H/s; "
                f"hashes per joule {report['hashes_per_joule'] or 'n/a (no power reading)'}"
            )
        if not report["proofs_found"] or report["proofs_verified"] != report["proofs_found"]:
            sys.exit(1)

    def _devices(self, options):
        readings = {} if options["no_poll"] else {h.device_id: h for h in services.poll_devices()}
        rows = []
        for d in selectors.devices():
            health = readings.get(d.pk)
            rows.append(
                {
                    "worker": d.worker,
                    "status": d.status,
                    "model": d.model,
                    "kind": d.kind,
                    "host": d.host,
                    "user_agent": d.user_agent,
                    "last_seen": d.last_seen.isoformat() if d.last_seen else None,
                    "proofs": d.proofs.count(),
                    "reading": None
                    if health is None
                    else {
                        "reachable": health.reachable,
                        "error": health.error,
                        "hashrate_ghs": health.hashrate_ghs,
                        "temperature_c": health.temperature_c,
                        "power_w": health.power_w,
                        "accepted": health.accepted,
                        "rejected": health.rejected,
                        "pool_url": health.pool_url,
                    },
                }
            )
        if options["json"]:
            self.stdout.write(json.dumps({"devices": rows}, sort_keys=True))
            return
        for row in rows:
            reading = row["reading"]
            state = (
                ""
                if reading is None
                else f"  unreachable: {reading['error']}"
                if not reading["reachable"]
                else f"  {reading['hashrate_ghs']} GH/s {reading['temperature_c']} C {reading['power_w']} W "
                f"pool {reading['pool_url']}"
            )
            self.stdout.write(
                f"{row['worker']:24} {row['status']:9} {row['kind']:9} {row['proofs']:6} proofs  "
                f"{row['model'] or row['user_agent']}{state}"
            )

    def _point(self, options):
        try:
            device = services.point_device(
                worker=options["worker"],
                stratum_host=options["stratum_host"],
                stratum_port=options["stratum_port"],
            )
        except (services.DeviceError, ValueError) as error:
            raise CommandError(str(error), returncode=2) from None
        except Exception as error:  # the device refused or did not answer
            self.stderr.write(f"{options['worker']}: {error}")
            sys.exit(1)
        self.stdout.write(
            f"{device.worker} now mines for {options['stratum_host']}:{options['stratum_port']}"
        )


async def _software_session(seconds: float) -> None:
    """An in-process Stratum server and software miner on loopback, for a session with no hardware."""
    from asgiref.sync import sync_to_async

    from asicproof.backend import DjangoBackend
    from asicproof.serving import server_config
    from asicproof.stratum.miner import MinerConfig, mine
    from asicproof.stratum.server import StratumServer
    from ledger import services as ledger_services

    await sync_to_async(ledger_services.seal_checkpoint)()
    await sync_to_async(services.decide_device)(worker="softminer-validate", approve=True, kind="software")
    backend = DjangoBackend(poll_seconds=1)
    await backend.refresh()
    server = StratumServer(backend, server_config(host="127.0.0.1", port=0))
    await server.start()
    try:
        await mine(
            MinerConfig(
                port=server.port,
                worker="softminer-validate",
                suggest_difficulty=1e-4,
                max_shares=None,
                max_seconds=seconds,
            )
        )
    finally:
        await server.close()
