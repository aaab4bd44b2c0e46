"""The Stratum server's configuration on this node: the tier profile decides where the node's own ASIC
class starts (asic.proof_difficulty, about one share per 10 s at the tier's nominal hash rate)."""

from django.conf import settings

from .stratum.server import ServerConfig
from .stratum.vardiff import DEFAULT_PROFILES, starting_at


def server_config(*, host: str, port: int, proof_difficulty: float | None = None, tier=None) -> ServerConfig:
    """`proof_difficulty` (from the command line) wins over the tier profile's; `tier` defaults to the
    node's active profile (settings.PROFILE, which SILICONHEALTH_PROOF_DIFFICULTY already overrides)."""
    tier = tier or settings.PROFILE
    start = tier.proof_difficulty if proof_difficulty is None else proof_difficulty
    return ServerConfig(host=host, port=port, profiles=starting_at(DEFAULT_PROFILES, tier.asic_model, start))
