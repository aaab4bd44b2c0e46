import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.models import User
from accounts.roles import ROLE_CAPABILITIES, Capability, Role

pytestmark = pytest.mark.django_db


def test_users_add_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("a long enough passphrase 42\n"))
    call_command("users", "add", "wanjiru", "--role", "nurse", "--password-stdin")
    user = User.objects.get(username="wanjiru")
    assert user.role == "nurse"
    assert user.check_password("a long enough passphrase 42")


@pytest.mark.parametrize(
    "args,stdin",
    [
        (["users", "add", "x", "--role", "nurse"], "whatever long password"),  # no --password-stdin
        (["users", "add", "x", "--role", "nurse", "--password-stdin"], "short"),  # too weak
    ],
)
def test_users_add_refuses_bad_input(monkeypatch, args, stdin):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(stdin + "\n"))
    with pytest.raises(CommandError) as error:
        call_command(*args)
    assert error.value.returncode == 2
    assert not User.objects.filter(username="x").exists()


def test_users_add_unknown_role_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "users", "add", "y", "--role", "wizard", "--password-stdin"],
        input="a long enough passphrase 42\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "wizard" in result.stderr


def test_clerk_has_no_clinical_capability_and_auditor_writes_nothing():
    assert Capability.VIEW_CLINICAL not in ROLE_CAPABILITIES[Role.CLERK]
    writes = {
        Capability.RECORD_ENCOUNTERS,
        Capability.DIAGNOSE_AND_PRESCRIBE,
        Capability.UPLOAD_ATTACHMENTS,
        Capability.REGISTER_PATIENTS,
        Capability.MERGE_PATIENTS,
    }
    assert not writes & ROLE_CAPABILITIES[Role.AUDITOR]


def test_login_locks_out_after_repeated_failures(client, make_user):
    make_user("clinician", username="otieno")
    url = reverse("accounts:login")
    for _ in range(5):
        client.post(url, {"username": "otieno", "password": "wrong"}, REMOTE_ADDR="10.0.0.5")
    response = client.post(
        url, {"username": "otieno", "password": "correct horse battery staple"}, REMOTE_ADDR="10.0.0.5"
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_login_works_with_the_right_password(client, make_user):
    make_user("clinician", username="baraka")
    response = client.post(
        reverse("accounts:login"), {"username": "baraka", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_csrf_is_enforced(make_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    make_user("clinician", username="kamau")
    response = strict.post(
        reverse("accounts:login"), {"username": "kamau", "password": "correct horse battery staple"}
    )
    assert response.status_code == 403
