import pytest
from django.urls import reverse

from asicproof import services
from asicproof.models import Device

pytestmark = pytest.mark.django_db


def test_admin_approves_a_pending_device(client, login):
    services.authorize_device(worker="lv06-clinic", user_agent="ESP-Miner/2.9.0")
    login("admin")
    page = client.get(reverse("asicproof:devices")).content.decode()
    assert "lv06-clinic" in page and "Waiting for approval" in page
    response = client.post(reverse("asicproof:decide", args=["lv06-clinic"]), {"decision": "approve"})
    assert response.status_code == 302
    device = Device.objects.get(worker="lv06-clinic")
    assert device.status == "approved" and device.kind == "axeos"
    assert device.decided_by.username == "test_admin"


@pytest.mark.parametrize("role", ["auditor", "clinician", "clerk"])
def test_only_an_admin_decides(client, login, role):
    services.authorize_device(worker="stranger", user_agent="cpuminer/2.5")
    login(role)
    response = client.post(reverse("asicproof:decide", args=["stranger"]), {"decision": "approve"})
    assert response.status_code == 403
    assert Device.objects.get(worker="stranger").status == "pending"


def test_clinicians_cannot_see_the_device_list(client, login):
    login("clinician")
    assert client.get(reverse("asicproof:devices")).status_code == 403
