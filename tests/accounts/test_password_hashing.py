"""Password hashes: Argon2id at the node's cost for new passwords; older PBKDF2 hashes (Django's default
until now) and Argon2 hashes of other costs still log in and are re-hashed at that login."""

import pytest
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    PBKDF2PasswordHasher,
    identify_hasher,
    make_password,
)
from django.test import Client
from django.urls import reverse

from accounts.hashers import NodeArgon2PasswordHasher
from accounts.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
NODE_ARGON2 = "argon2$argon2id$v=19$m=19456,t=2,p=1$"


class _CheapPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000  # the same algorithm name and format as a stored PBKDF2 hash, made quickly


def _log_in(username: str, password: str, address: str = "10.0.0.5"):
    return Client().post(
        reverse("accounts:login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_a_new_password_is_hashed_with_argon2id_at_the_node_cost(make_user):
    user = make_user("nurse")
    assert user.password.startswith(NODE_ARGON2), user.password
    assert isinstance(identify_hasher(user.password), NodeArgon2PasswordHasher)
    assert user.check_password(PASSWORD) and not user.check_password(PASSWORD + "x")


@pytest.mark.parametrize(
    "old_hash",
    [
        pytest.param(lambda: _CheapPBKDF2().encode(PASSWORD, _CheapPBKDF2().salt()), id="pbkdf2"),
        pytest.param(lambda: make_password(PASSWORD, hasher=Argon2PasswordHasher()), id="argon2-default"),
    ],
)
def test_an_older_hash_logs_in_and_is_rehashed_at_the_node_cost(make_user, old_hash):
    user = make_user("clinician", username="amina")
    User.objects.filter(pk=user.pk).update(password=old_hash())
    assert not User.objects.get(pk=user.pk).password.startswith(NODE_ARGON2)
    assert _log_in("amina", PASSWORD).status_code == 302
    assert User.objects.get(pk=user.pk).password.startswith(NODE_ARGON2)


def test_a_wrong_password_against_an_old_hash_is_refused_and_changes_nothing(make_user):
    user = make_user("clinician", username="baraka")
    old = _CheapPBKDF2().encode(PASSWORD, _CheapPBKDF2().salt())
    User.objects.filter(pk=user.pk).update(password=old)
    response = _log_in("baraka", "not the password at all")
    assert response.status_code == 200 and "_auth_user_id" not in response.client.session
    assert User.objects.get(pk=user.pk).password == old


def test_brute_force_lockout_still_applies_with_argon2(make_user, settings):
    make_user("clinician", username="chausiku")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _log_in("chausiku", f"guess number {attempt}", "10.0.0.8").status_code == 200
    assert _log_in("chausiku", "one guess too many", "10.0.0.8").status_code == 429
    assert _log_in("chausiku", PASSWORD, "10.0.0.8").status_code == 429
