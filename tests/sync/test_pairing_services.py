"""Pairing by one-time code through the parent's endpoint and the admin page: a good code registers
the child once; a wrong, expired, reused or guessed code, or a tampered answer, registers nothing."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger import selectors as ledger_selectors
from sync import pairing, pairing_services
from sync.models import PairingCode, Peer

from .test_pairing import keypair

pytestmark = pytest.mark.django_db
ACCEPT = "/sync/pair/accept"


def child_request(code: str, child=None, nonce="a" * 32) -> bytes:
    node_id, public_key = child or keypair()
    return pairing.make_request(
        key=pairing.code_key(code),
        node_id=node_id,
        public_key=public_key,
        tier="rural_clinic",
        url="http://10.0.0.3:8000",
        nonce=nonce,
    )


def post(client, body: bytes):
    return client.post(ACCEPT, data=body, content_type="application/json")


def test_a_child_with_a_live_code_is_registered_once_and_gets_our_authenticated_identity(client):
    code, row = pairing_services.issue_code(created_by="admin")
    child = keypair()
    response = post(client, child_request(code, child))
    assert response.status_code == 200, response.content
    me = ledger_selectors.node_identity()
    answer = pairing.verify_answer(
        response.content, key=pairing.code_key(code), public_key=child[1], nonce="a" * 32
    )
    assert (answer["node_id"], answer["public_key"]) == (me.node_id, me.public_key_b64)
    peer = Peer.objects.get(node_id=child[0])
    assert (peer.role, peer.public_key, peer.url) == (Peer.Role.CHILD, child[1], "http://10.0.0.3:8000")
    row.refresh_from_db()
    assert row.used_at is not None and row.used_by_node == child[0]
    # Single use: the same code again, even by the same child, is refused.
    again = post(client, child_request(code, child, nonce="b" * 32))
    assert again.status_code == 403 and "no live pairing code" in again.json()["error"]


def test_the_code_is_stored_only_as_a_hash():
    code, row = pairing_services.issue_code()
    assert code not in row.key_hash and pairing.grouped(code) not in row.key_hash
    assert row.key_hash == pairing.code_key(code).hex()


def test_a_wrong_code_registers_nothing_and_counts_against_live_codes(client):
    _code, row = pairing_services.issue_code()
    response = post(client, child_request("0000000000"))
    assert response.status_code == 403
    assert not Peer.objects.exists()
    row.refresh_from_db()
    assert row.failures == 1 and row.used_at is None


def test_an_expired_code_is_refused(client):
    code, row = pairing_services.issue_code()
    PairingCode.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert post(client, child_request(code)).status_code == 403
    assert not Peer.objects.exists()


def test_guessing_kills_the_codes_after_a_few_tries(client):
    code, _row = pairing_services.issue_code()
    for _ in range(pairing_services.MAX_FAILURES):
        assert post(client, child_request(pairing.new_code())).status_code == 403
    # The right code now comes too late: it died with the guesses.
    response = post(client, child_request(code))
    assert response.status_code == 403
    assert not Peer.objects.exists()


def test_only_a_few_codes_live_at_once():
    for _ in range(pairing_services.MAX_LIVE_CODES):
        pairing_services.issue_code()
    with pytest.raises(pairing_services.PairingRefused, match="still live"):
        pairing_services.issue_code()
    assert PairingCode.objects.count() == pairing_services.MAX_LIVE_CODES


@pytest.mark.parametrize("body", [b"", b"{}", b"x" * 10, b"[" * 3000])
def test_malformed_requests_are_refused_without_using_a_code(client, body):
    _code, row = pairing_services.issue_code()
    assert post(client, body).status_code == 400
    row.refresh_from_db()
    assert row.failures == 0 and not Peer.objects.exists()


def test_an_oversized_request_is_refused(client):
    response = post(client, b" " * (pairing.MAX_BODY_BYTES + 10))
    assert response.status_code == 413


def test_a_request_claiming_this_nodes_own_identity_registers_nothing_and_keeps_the_code(client):
    code, row = pairing_services.issue_code()
    me = ledger_selectors.node_identity()
    response = post(client, child_request(code, (me.node_id, me.public_key_b64)))
    assert response.status_code == 403 and "own id" in response.json()["error"]
    row.refresh_from_db()
    assert row.used_at is None and not Peer.objects.exists()


class FakeParent:
    """A parent reached over a transport we control: answers with its own key, optionally tampered."""

    def __init__(self, code: str, tamper=None):
        self.key, self.identity, self.tamper, self.calls = pairing.code_key(code), keypair(), tamper, 0

    def __call__(self, url: str, body: bytes) -> bytes:
        self.calls += 1
        assert url == "http://10.0.0.2:8000" + pairing_services.ACCEPT_PATH
        request = pairing.parse_request(body)
        answer = json.loads(
            pairing.make_answer(
                key=self.key,
                request=request,
                node_id=self.identity[0],
                public_key=self.identity[1],
                tier="urban_centre",
                url="http://10.0.0.2:8000",
                nonce="c" * 32,
            )
        )
        if self.tamper:
            self.tamper(answer)
        return pairing.canonical(answer)


def test_joining_registers_the_parent_from_its_authenticated_answer():
    parent = FakeParent("7K3QX9M2PA")
    peer = pairing_services.join_parent(parent_url="http://10.0.0.2:8000/", code="7k3qx-9m2pa", post=parent)
    assert (peer.node_id, peer.public_key, peer.role) == (parent.identity[0], parent.identity[1], "parent")
    assert peer.url == "http://10.0.0.2:8000" and peer.tier == "urban_centre"
    assert peer.pairing == Peer.Pairing.CONFIRMED


def test_a_tampered_answer_registers_nothing():
    other = keypair()

    def swap_key(answer):
        answer["node_id"], answer["public_key"] = other

    with pytest.raises(pairing_services.PairingRefused, match="not authenticated"):
        pairing_services.join_parent(
            parent_url="http://10.0.0.2:8000", code="7K3QX9M2PA", post=FakeParent("7K3QX9M2PA", swap_key)
        )
    assert not Peer.objects.exists()


def test_a_parent_that_knows_another_code_registers_nothing():
    with pytest.raises(pairing_services.PairingRefused):
        pairing_services.join_parent(
            parent_url="http://10.0.0.2:8000", code="7K3QX9M2PA", post=FakeParent("0000000000")
        )
    assert not Peer.objects.exists()


@pytest.mark.parametrize("url, code", [("ftp://x", "7K3QX9M2PA"), ("http://10.0.0.2:8000", "7K3QX")])
def test_a_bad_url_or_code_is_refused_before_anything_is_sent(url, code):
    parent = FakeParent("7K3QX9M2PA")
    with pytest.raises(pairing_services.PairingRefused):
        pairing_services.join_parent(parent_url=url, code=code, post=parent)
    assert parent.calls == 0 and not Peer.objects.exists()


# --- the admin page -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clinician", "nurse", "clerk", "auditor"])
def test_only_an_admin_can_open_the_pairing_page_or_issue_a_code(client, login, role):
    login(role)
    assert client.get("/sync/pair/").status_code == 403
    assert client.post("/sync/pair/", {"action": "issue"}).status_code == 403
    assert not PairingCode.objects.exists()


def test_an_admin_gets_a_grouped_code_and_this_nodes_id(client, login):
    login("admin")
    page = client.get("/sync/pair/")
    assert page.status_code == 200 and ledger_selectors.self_node_id() in page.content.decode()
    issued = client.post("/sync/pair/", {"action": "issue"})
    assert issued.status_code == 200
    row = PairingCode.objects.get()
    shown = issued.context["code"]
    assert shown in issued.content.decode() and len(shown) == 11 and shown[5] == "-"
    assert pairing.code_key(shown).hex() == row.key_hash


def test_joining_an_unreachable_parent_shows_a_clear_refusal(client, login):
    login("admin")
    response = client.post(
        "/sync/pair/", {"action": "join", "parent_url": "http://127.0.0.1:9", "code": "7K3QX9M2PA"}
    )
    assert response.status_code == 422 and "could not reach the parent" in response.content.decode()
    assert not Peer.objects.exists()


def test_the_console_network_page_links_pairing_for_admins_only(client):
    from accounts.models import User

    client.force_login(User.objects.create_user(username="net-admin", password="pw", role="admin"))
    assert reverse("sync:pair") in client.get(reverse("audit:network")).content.decode()
    client.force_login(User.objects.create_user(username="net-auditor", password="pw", role="auditor"))
    assert reverse("sync:pair") not in client.get(reverse("audit:network")).content.decode()
