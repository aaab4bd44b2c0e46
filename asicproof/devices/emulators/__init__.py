"""Faithful stand-ins for the devices the node manages, pure asyncio/stdlib (no pyasic, no Django).

    async with AxeOSEmulator(model="Lucky Miner LV06") as lv06, CgminerRPCEmulator() as s9:
        reading = await poll("127.0.0.1", "axeos", web_port=lv06.port)

or, from synchronous code, `with AxeOSEmulator() as emu:` runs it on its own thread.
`python -m asicproof.devices.emulators` starts one of each for a demo.
"""

from .axeos import PRESETS as AXEOS_MODELS
from .axeos import AxeOSEmulator, AxeOSState
from .cgminer import PRESETS as CGMINER_MODELS
from .cgminer import CgminerRPCEmulator, CgminerState, Chain, Pool

__all__ = [
    "AXEOS_MODELS",
    "CGMINER_MODELS",
    "AxeOSEmulator",
    "AxeOSState",
    "CgminerRPCEmulator",
    "CgminerState",
    "Chain",
    "Pool",
]
