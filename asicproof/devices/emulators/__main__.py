"""Run emulated devices until interrupted: python -m asicproof.devices.emulators [--help]."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .axeos import PRESETS as AXEOS_MODELS
from .axeos import AxeOSEmulator
from .cgminer import PRESETS as CGMINER_MODELS
from .cgminer import CgminerRPCEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Emulated AxeOS and cgminer devices for demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--axeos",
        action="append",
        metavar="MODEL=PORT",
        default=[],
        help=f"AxeOS device, MODEL one of {', '.join(AXEOS_MODELS)} (repeatable)",
    )
    parser.add_argument(
        "--cgminer",
        action="append",
        metavar="MODEL=PORT",
        default=[],
        help=f"cgminer device, MODEL one of {', '.join(CGMINER_MODELS)} (repeatable)",
    )
    args = parser.parse_args(argv)
    if not args.axeos and not args.cgminer:
        args.axeos = ["Lucky Miner LV06=8080"]
        args.cgminer = ["Antminer S9=4028"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> None:
    devices = []
    for cls, specs in ((AxeOSEmulator, args.axeos), (CgminerRPCEmulator, args.cgminer)):
        for spec in specs:
            model, _, port = spec.rpartition("=")
            devices.append(cls(host=args.host, port=int(port), model=model))
    for device in devices:
        await device.start()
        kind = "axeos" if isinstance(device, AxeOSEmulator) else "cgminer"
        print(f"{device.model:<18} kind={kind:<8} {args.host}:{device.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for device in devices:
            await device.close()


if __name__ == "__main__":
    main()
