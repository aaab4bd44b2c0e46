import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from asicproof.models import Device, Proof

from ..records import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
def test_validate_runs_a_proof_session_and_reports_it(capsys):
    factories.patient()
    call_command("asic", "validate", "--seconds", "3", "--software", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["proofs_found"] >= 1
    assert report["proofs_verified"] == report["proofs_found"] == Proof.objects.count()
    assert report["verification_rate"] == 1.0
    assert report["effective_hashrate_hs"] > 0
    # expected time per share = difficulty * 2**32 / hashrate
    expected = report["mean_share_difficulty"] * 2**32 / report["effective_hashrate_hs"]
    assert report["expected_time_per_share_s"] == pytest.approx(expected, rel=0.01)


def test_approve_revoke_and_list_devices(capsys):
    call_command(
        "asic", "approve", "s9-hospital", "--model", "Antminer S9", "--kind", "cgminer", "--host", "10.0.0.9"
    )
    device = Device.objects.get(worker="s9-hospital")
    assert (device.status, device.kind, device.model) == ("approved", "cgminer", "Antminer S9")
    call_command("asic", "revoke", "s9-hospital")
    capsys.readouterr()
    call_command("asic", "devices", "--json")
    [listed] = json.loads(capsys.readouterr().out)["devices"]
    assert listed["status"] == "revoked"


def test_validate_refuses_a_silly_duration():
    with pytest.raises(CommandError) as error:
        call_command("asic", "validate", "--seconds", "0")
    assert error.value.returncode == 2


def test_mine_with_a_bad_url_exits_2():
    with pytest.raises(CommandError) as error:
        call_command("asic", "mine", "--url", "http://nope", "--shares", "1")
    assert error.value.returncode == 2
