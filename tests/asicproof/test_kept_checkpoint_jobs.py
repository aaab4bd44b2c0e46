"""A newer checkpoint does not waste the work on the previous ones, over real TCP with the Django
backend: its job goes out with clean_jobs=false, a share for an older checkpoint's job is still
accepted and stored against that checkpoint (not the newest), proof bundles stay exact, and a job that
fell out of the server's book is stale (21)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from asicproof import services
from asicproof.backend import DjangoBackend
from asicproof.models import Proof
from asicproof.selectors import proofs_for_bundle
from asicproof.stratum.header import hex32
from asicproof.stratum.server import ServerConfig, StratumServer
from ledger import bundle
from ledger import services as ledger_services
from ledger.models import Checkpoint
from ledger.note import note_hash
from ledger.selectors import self_node_id
from ledger.verify_asic import check_asic_proofs
from ledger.verify_bundle import parse, verify

from ..records import factories
from .stratum.helpers import Client, find_share

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


async def _with_client(scenario, **config):
    """A server on the Django backend (jobs published by explicit refresh(), not by the poll task, so
    the test decides when a checkpoint's job goes out) and one authorized raw client."""
    backend = DjangoBackend()
    await backend.refresh()
    server = StratumServer(backend, ServerConfig(host="127.0.0.1", port=0, **config))
    await server.start()
    client = await Client.connect(server.port)
    try:
        await client.handshake(worker="w1", configure=False)
        return await scenario(backend, client)
    finally:
        client.close()
        await server.close()
        await sync_to_async(connections.close_all)()  # the ORM thread's connection: let the test DB go


async def _share(client: Client, job, en2: bytes = bytes(4)) -> dict:
    nonce = find_share(job, client.extranonce1, client.difficulty, en2=en2)
    reply = await client.call("mining.submit", ["w1", job.job_id, en2.hex(), hex32(job.ntime), hex32(nonce)])
    return reply


async def _new_checkpoint(patient, backend: DjangoBackend | None = None):
    await sync_to_async(factories.encounter)(patient)
    checkpoint = await sync_to_async(ledger_services.seal_checkpoint)()
    if backend is not None:
        assert await backend.refresh()
    return checkpoint


def test_a_share_for_the_previous_checkpoint_is_kept_and_bound_to_it():
    patient = factories.patient()
    services.decide_device(worker="w1", approve=True)
    first = ledger_services.seal_checkpoint()

    async def scenario(backend, client):
        old_job = await client.wait_job(f"{first.size:x}")
        assert old_job.clean_jobs  # a new connection starts clean
        second = await _new_checkpoint(patient, backend)
        new_job = await client.wait_job(f"{second.size:x}")
        assert not new_job.clean_jobs  # the node's checkpoints never make older work invalid
        old_reply = await _share(client, old_job)  # found before the miner switched: still in flight
        new_reply = await _share(client, new_job)
        again = await _share(client, old_job)
        return second, old_reply, new_reply, again

    second, old_reply, new_reply, again = asyncio.run(_with_client(scenario))
    assert old_reply["result"] is True, old_reply
    assert new_reply["result"] is True, new_reply
    assert again["error"][0] == 22, again  # the same share for the same (older) job: a duplicate
    old_proof = Proof.objects.get(checkpoint=first)
    assert services.proof_json(old_proof)["job_id"] == f"{first.size:x}"
    assert Proof.objects.filter(checkpoint=second).count() == 1

    # The record's bundle is at the newest checkpoint and carries only the share bound to it ...
    document = parse(bundle.serialize(bundle.build_bundle(patient.pk)))
    summary = verify(document, proof_checkers=[check_asic_proofs])
    assert summary["asic_proofs"] == 1
    # ... and the older checkpoint's proofs check against that checkpoint.
    older = {"asic_proofs": proofs_for_bundle(first), "node_id": self_node_id()}
    assert check_asic_proofs(older, note_hash(first.note)) == 1


def test_a_share_for_a_job_out_of_the_book_is_stale_and_one_past_16_checkpoints_is_bound():
    patient = factories.patient()
    services.decide_device(worker="w1", approve=True)
    first = ledger_services.seal_checkpoint()

    async def scenario(backend, client):
        old_job = await client.wait_job(f"{first.size:x}")
        for _ in range(17):  # sealed faster than jobs go out: only the newest gets a job
            await _new_checkpoint(patient)
        later = await _new_checkpoint(patient, backend)
        later_job = await client.wait_job(f"{later.size:x}")
        kept = await _share(client, old_job)  # 18 checkpoints back, but its job is still in the book
        newest = await _new_checkpoint(patient, backend)
        await client.wait_job(f"{newest.size:x}")
        stale = await _share(client, old_job, en2=b"\0\0\0\1")  # max_jobs=2: the first job left
        still = await _share(client, later_job)
        return kept, stale, still, later

    kept, stale, still, later = asyncio.run(_with_client(scenario, max_jobs=2))
    assert kept["result"] is True, kept
    assert stale["error"][0] == 21 and stale["result"] is False, stale
    assert still["result"] is True, still
    assert Proof.objects.filter(checkpoint=first).count() == 1
    assert Proof.objects.filter(checkpoint=later).count() == 1
    assert Proof.objects.count() == 2


def test_a_log_that_did_not_grow_gets_a_clean_job():
    """A restored or reset database: the newest checkpoint is not larger than the one already
    published, so earlier jobs may name checkpoints that no longer exist."""
    factories.patient()
    first = ledger_services.seal_checkpoint()

    async def scenario():
        backend = DjangoBackend()
        assert await backend.refresh()
        published = backend.current_job()
        await sync_to_async(Checkpoint.objects.filter(pk=first.pk).delete)()
        again = await sync_to_async(ledger_services.seal_checkpoint)()  # same size, another row
        assert await backend.refresh()
        await sync_to_async(connections.close_all)()
        return published, again, backend.current_job()

    published, again, job = asyncio.run(scenario())
    assert published.clean_jobs  # the first job: nothing before it
    assert again.pk != first.pk and again.size == first.size
    assert job.clean_jobs and job.job_id == f"{first.size:x}"
