"""A node restored from a backup must not write into its own log before it has caught up.

Its peers may hold entries of its log written after the backup. Writing new entries at those indexes
would fork its own log, so restore marks the node "catching up" (a small file in the node's home,
beside the database it describes) and every append is refused until a sync round has brought back
whatever a peer holds of our log beyond ours. Checked once per append batch: one stat() call.
"""

import json
import os
import time
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext_lazy as _

FLAG_NAME = "catching-up.json"
MAX_FLAG_BYTES = 4096  # what restore writes is a few dozen bytes

CATCHING_UP_MESSAGE = _(
    "This node was restored from a backup and is catching up with its peers. New records can be "
    "written once a sync round with the parent has finished."
)


class CatchingUp(RuntimeError):
    """A write was refused: this node is catching up on its own log after a restore."""

    def __init__(self, message: str | None = None):
        super().__init__(message or str(CATCHING_UP_MESSAGE))


def flag_path() -> Path:
    configured = getattr(settings, "LEDGER_CATCHUP_FLAG", None)
    return Path(configured or Path(settings.SILICONHEALTH_HOME) / FLAG_NAME)


def is_catching_up() -> bool:
    # On every append batch: plain strings and one stat(), no Path objects (they cost more than the stat).
    configured = getattr(settings, "LEDGER_CATCHUP_FLAG", None)
    return os.path.exists(configured or os.path.join(settings.SILICONHEALTH_HOME, FLAG_NAME))


def catching_up_since() -> dict | None:
    """What restore recorded when it set the flag (None when the node is not catching up)."""
    try:
        with open(flag_path(), "rb") as handle:
            raw = handle.read(MAX_FLAG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError:
        return {}  # present but unreadable: still catching up
    if len(raw) > MAX_FLAG_BYTES:
        return {}
    try:
        facts = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return facts if isinstance(facts, dict) else {}


def refuse_if_catching_up() -> None:
    if is_catching_up():
        raise CatchingUp()


def mark_catching_up(*, log_size: int, reason: str) -> None:
    """Set the flag durably (written whole, then renamed), so a power cut never loses it."""
    path = flag_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w") as handle:
        json.dump({"since": int(time.time()), "log_size": log_size, "reason": reason[:500]}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def clear_catching_up() -> bool:
    """Clear the flag; True if it was set."""
    try:
        flag_path().unlink()
    except FileNotFoundError:
        return False
    return True
