"""A fork raises exactly one audit alert carrying both signed checkpoints; seeing it again touches it."""

import pytest

from audit.models import Alert
from ledger.models import Checkpoint
from sync.models import ForkEvidence

from ..ledger.remote import RemoteNode
from .test_endpoints import Caller, answer, as_batch, fork_of, refusal

pytestmark = pytest.mark.django_db


def test_a_fork_alerts_the_audit_console_with_both_checkpoints(client):
    caller = Caller(client)
    remote = RemoteNode()
    remote.patient()
    answer(caller.post("push", as_batch(remote)))
    ours = Checkpoint.objects.get(origin=remote.node_id, size=1).note
    fork = fork_of(remote)
    fork.patient(given_name="Rewritten")
    refusal(caller.post("push", as_batch(fork)), 409)
    alert = Alert.objects.get(kind="fork")
    assert remote.node_id in alert.title and alert.status == Alert.Status.OPEN
    assert alert.evidence["our_checkpoint"] == ours
    assert alert.evidence["their_checkpoint"] == fork.checkpoint(1)
    assert alert.evidence["fork_evidence_id"] == ForkEvidence.objects.get().pk
    # The same fork shown again is the same alert, seen twice; no second ForkEvidence either.
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED)
    ForkEvidence.objects.update(resolved=True)  # let the peer be checked again
    refusal(caller.post("push", as_batch(fork)), 409)
    assert Alert.objects.filter(kind="fork").count() == 1
    again = Alert.objects.get(kind="fork")
    assert again.seen_count == 2 and again.status == Alert.Status.OPEN
