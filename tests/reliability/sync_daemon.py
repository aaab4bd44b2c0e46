"""A child node's sync daemon for the reliability suite: write a record, sync with the parent, repeat.

    python -m tests.reliability.sync_daemon --parent-url URL --interval S --acks FILE

Run with the child's environment (its SILICONHEALTH_HOME). Every committed local write is appended to
the acks file (one JSON line, flushed and fsynced) only after its transaction committed, so the check
afterwards can demand each of them. Errors of a round are logged and the loop goes on, the way the
beat-driven sync task retries; SIGTERM ends it between rounds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent-url", required=True)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--acks", required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds of silence before giving up")
    options = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siliconhealth.settings")
    import django

    django.setup()
    from django.db import close_old_connections

    from records import services as records_services
    from sync import selectors, services

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    number = 0
    with open(options.acks, "a") as acks:
        while not stopping:
            close_old_connections()
            number += 1
            token = f"sd{os.getpid()}x{number}"
            try:
                patient = records_services.register_patient(
                    author="sync-daemon",
                    given_name=token,
                    family_name="Daemon",
                    sex="female",
                    birth_date=datetime.date(1990, 1, 1),
                    village="Reliability",
                )
                acks.write(json.dumps({"kind": "patient", "id": str(patient.pk)}) + "\n")
                acks.flush()
                os.fsync(acks.fileno())
                peer = selectors.find_peer(options.parent_url)
                result = services.run_round(peer, client=services.PeerClient(peer, timeout=options.timeout))
                print(json.dumps({"round": number, "ok": result.ok, "problems": result.problems}), flush=True)
            except Exception as error:  # noqa: BLE001 - a daemon logs and carries on, like the retried task
                print(json.dumps({"round": number, "error": f"{type(error).__name__}: {error}"}), flush=True)
            deadline = time.monotonic() + options.interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
