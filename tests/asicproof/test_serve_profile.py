"""`asic serve` starts the node's own ASIC class at the tier profile's asic.proof_difficulty; an explicit
--proof-difficulty wins. The command is stopped before it listens; a real server checks the wire."""

import asyncio
import dataclasses

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from asicproof.serving import server_config
from asicproof.stratum.vardiff import DEFAULT_PROFILES, classify
from siliconhealth.tiers import PROFILES, REGIONAL_HOSPITAL, RURAL_CLINIC, URBAN_CENTRE

from .stratum.helpers import Client, running_server

CGMINER = "cgminer/4.11.1"  # an Antminer S9 / S19 (the antminer class)
BITAXE = "bitaxe/BM1366/v2.4.1"  # an LV06 / Bitaxe (the bm13xx class)


class _Stop(Exception):
    pass


@pytest.fixture
def served(monkeypatch):
    """Runs `asic serve` up to the server's start and returns the ServerConfig it was given."""
    captured = []

    class Backend:
        async def refresh(self):
            return None

    class Server:
        def __init__(self, backend, config):
            captured.append(config)

        async def start(self):
            raise _Stop

    monkeypatch.setattr("asicproof.backend.DjangoBackend", Backend)
    monkeypatch.setattr("asicproof.stratum.server.StratumServer", Server)

    def serve(*args):
        with pytest.raises(_Stop):
            call_command("asic", "serve", "--port", "0", *args)
        [config] = captured
        return config

    return serve


@pytest.mark.parametrize(
    "tier,agent",
    [(REGIONAL_HOSPITAL, CGMINER), (URBAN_CENTRE, CGMINER), (RURAL_CLINIC, BITAXE)],
)
def test_serve_starts_the_tiers_asic_class_at_its_proof_difficulty(served, settings, tier, agent):
    settings.PROFILE = PROFILES[tier]
    config = served()
    assert classify(agent, config.profiles).start == PROFILES[tier].proof_difficulty
    # Other device classes keep their defaults: a software miner is not handed an ASIC's difficulty.
    assert classify("cpuminer/2.5.1", config.profiles) == classify("cpuminer/2.5.1", DEFAULT_PROFILES)


def test_the_profiles_really_differ_from_the_built_in_starts():
    # Otherwise the test above would pass without any wiring.
    assert PROFILES[REGIONAL_HOSPITAL].proof_difficulty != classify(CGMINER).start
    assert PROFILES[URBAN_CENTRE].proof_difficulty != classify(CGMINER).start


def test_an_explicit_proof_difficulty_wins_over_the_profile(served, settings):
    settings.PROFILE = PROFILES[REGIONAL_HOSPITAL]
    config = served("--proof-difficulty", "4096")
    assert classify(CGMINER, config.profiles).start == 4096


def test_the_environment_override_reaches_serve(served, settings):
    # SILICONHEALTH_PROOF_DIFFICULTY is applied to settings.PROFILE by siliconhealth.tiers.
    settings.PROFILE = dataclasses.replace(PROFILES[URBAN_CENTRE], proof_difficulty=65536)
    assert classify(CGMINER, served().profiles).start == 65536


@pytest.mark.parametrize("bad", ["0", "-5", "nan", "inf", "lots", str(2**33)])
def test_a_bad_proof_difficulty_is_refused(served, bad):
    with pytest.raises(CommandError):
        call_command("asic", "serve", "--port", "0", "--proof-difficulty", bad)


def test_a_server_on_a_tier_profile_pushes_that_difficulty_to_its_asic():
    profiles = server_config(host="127.0.0.1", port=0, tier=PROFILES[URBAN_CENTRE]).profiles

    async def scenario():
        async with running_server(profiles=profiles) as server:
            client = await Client.connect(server.port)
            await client.handshake(worker="s9", agent=CGMINER, suggest=None)
            await client.wait_job()
            first = client.difficulty
            client.close()
            return first

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == PROFILES[URBAN_CENTRE].proof_difficulty
