"""The proof pipeline over real TCP: Stratum server with the Django backend, the software miner,
records and checkpoints, stored proofs, and an offline proof bundle that carries them."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from asicproof import services
from asicproof.backend import DjangoBackend
from asicproof.models import Device, Proof
from asicproof.stratum.miner import MinerConfig, mine
from asicproof.stratum.server import ServerConfig, StratumServer
from ledger import bundle
from ledger import services as ledger_services
from ledger.verify_asic import check_asic_proofs
from ledger.verify_bundle import BundleInvalid, parse, verify

from ..records import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def _with_server(coroutine_factory, **config):
    backend = DjangoBackend(poll_seconds=0.2)
    await backend.refresh()
    server = StratumServer(backend, ServerConfig(host="127.0.0.1", port=0, pending_poll=0.2, **config))
    await server.start()
    poller = asyncio.create_task(backend.poll_forever())
    try:
        return await coroutine_factory(server.port)
    finally:
        poller.cancel()
        await server.close()
        # sync_to_async's one ORM thread keeps its own connection: close it, or PostgreSQL cannot drop
        # the test database at the end of the run ("is being accessed by other users").
        await sync_to_async(connections.close_all)()


def _miner(port: int, **kwargs) -> MinerConfig:
    defaults = dict(
        host="127.0.0.1", port=port, worker="softminer", suggest_difficulty=1e-5, max_shares=3, max_seconds=60
    )
    defaults.update(kwargs)
    return MinerConfig(**defaults)


@pytest.mark.parametrize("style", ["esp", "cpuminer"])
def test_shares_become_proofs_bound_to_the_checkpoint_and_verify_offline(style):
    patient = factories.patient()
    services.decide_device(worker="softminer", approve=True)
    checkpoint = ledger_services.seal_checkpoint()

    stats = asyncio.run(_with_server(lambda port: mine(_miner(port, style=style))))

    assert stats.accepted >= 3, stats
    assert Proof.objects.filter(checkpoint=checkpoint).count() == stats.accepted
    document = bundle.build_bundle(patient.pk)
    summary = verify(parse(bundle.serialize(document)), proof_checkers=[check_asic_proofs])
    assert summary["asic_proofs"] == stats.accepted
    assert summary["asic_work"] > 0


def test_a_new_checkpoint_sends_a_new_job_and_shares_follow_it():
    patient = factories.patient()
    services.decide_device(worker="softminer", approve=True)
    first = ledger_services.seal_checkpoint()

    async def scenario(port):
        task = asyncio.create_task(mine(_miner(port, max_shares=None, max_seconds=30)))
        while await sync_to_async(Proof.objects.filter(checkpoint=first).count)() < 2:
            await asyncio.sleep(0.1)
        await sync_to_async(factories.encounter)(patient)
        second = await sync_to_async(ledger_services.seal_checkpoint)()
        while await sync_to_async(Proof.objects.filter(checkpoint=second).count)() < 2:
            await asyncio.sleep(0.1)
        task.cancel()
        return second

    second = asyncio.run(_with_server(scenario))
    assert second.size > first.size
    assert (
        Proof.objects.filter(checkpoint=first).exists() and Proof.objects.filter(checkpoint=second).exists()
    )


def test_an_unknown_device_waits_for_approval():
    factories.patient()
    ledger_services.seal_checkpoint()

    async def scenario(port):
        task = asyncio.create_task(mine(_miner(port, worker="lv06-clinic-7", max_shares=1, max_seconds=30)))
        while not await sync_to_async(Device.objects.filter(worker="lv06-clinic-7").exists)():
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        assert await sync_to_async(Proof.objects.count)() == 0  # nothing accepted while pending
        await sync_to_async(services.decide_device)(worker="lv06-clinic-7", approve=True)
        return await task

    stats = asyncio.run(_with_server(scenario))
    assert stats.accepted == 1
    assert Device.objects.get(worker="lv06-clinic-7").status == "approved"


def test_a_tampered_proof_in_a_bundle_is_refused():
    patient = factories.patient()
    services.decide_device(worker="softminer", approve=True)
    ledger_services.seal_checkpoint()
    asyncio.run(_with_server(lambda port: mine(_miner(port, max_shares=1))))
    document = bundle.build_bundle(patient.pk)
    document["asic_proofs"][0]["nonce"] ^= 1
    with pytest.raises(BundleInvalid, match="not a valid share"):
        verify(document, proof_checkers=[check_asic_proofs])


def test_a_share_is_stored_once_even_if_replayed():
    factories.patient()
    services.decide_device(worker="softminer", approve=True)
    ledger_services.seal_checkpoint()
    asyncio.run(_with_server(lambda port: mine(_miner(port, max_shares=1))))
    proof = services.proof_json(Proof.objects.get())
    assert services.record_proof(proof) is False
    assert Proof.objects.count() == 1
