"""Mining devices the node manages: poll them and point them at its Stratum server.

Pure Python, no Django. Protocol work goes through pyasic (imported on first use):
- kind "axeos": Bitaxe / Lucky Miner LV06 (ESP-Miner firmware, AxeOS HTTP API, port 80)
- kind "cgminer": Antminer S9 / S19 Pro (bmminer/cgminer JSON RPC, TCP port 4028)

    reading = await poll("192.168.1.50", "axeos")
    await point_at_node("192.168.1.50", "axeos", stratum_host="192.168.1.10", stratum_port=3333,
                        worker="lv06-reception")

Emulators of both (asicproof.devices.emulators) serve tests and demos.
"""

from .control import cgminer_escape, point_at_node
from .errors import DeviceError, DeviceUnreachable
from .models import KNOWN_MODELS, KnownModel, difficulty_for, find_model, models_of_kind
from .poll import poll
from .reading import KIND_AXEOS, KIND_CGMINER, KINDS, DeviceReading

__all__ = [
    "KINDS",
    "KIND_AXEOS",
    "KIND_CGMINER",
    "KNOWN_MODELS",
    "DeviceError",
    "DeviceReading",
    "DeviceUnreachable",
    "KnownModel",
    "cgminer_escape",
    "difficulty_for",
    "find_model",
    "models_of_kind",
    "point_at_node",
    "poll",
]
