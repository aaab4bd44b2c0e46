"""The cost model page in the audit console: GET form (tier, years), breakdown and sensitivity table."""

import re

import pytest
from django.urls import reverse

from deploy import costmodel

URL = "/audit/costmodel/"


def test_the_url_is_the_cost_model_page_not_the_generic_audit_console():
    assert reverse("deploy:costmodel") == URL


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditor_and_admin_see_the_total_and_the_sensitivity_table(client, login, role):
    login(role)
    response = client.get(URL, {"tier": "rural_clinic", "years": 5})
    assert response.status_code == 200
    html = response.content.decode()
    expected = costmodel.estimate(costmodel.load_assumptions(), tier="rural_clinic", years=5)
    total = re.search(r'id="total-usd">([0-9.]+)<', html).group(1)
    assert float(total) == pytest.approx(expected["total_usd"], abs=0.01)
    table = html.split('id="sensitivity"')[1].split("</table>")[0]
    assert table.count("<tr>") == len(expected["sensitivity"]["rows"]) + 1  # plus the header row
    assert "sun_hours_per_day" in table


def test_years_and_tier_from_the_form_change_the_result(client, login):
    login("auditor")
    five = client.get(URL, {"tier": "mobile_point", "years": 5}).content.decode()
    ten = client.get(URL, {"tier": "mobile_point", "years": 10}).content.decode()
    totals = [float(re.search(r'id="total-usd">([0-9.]+)<', html).group(1)) for html in (five, ten)]
    expected = [
        costmodel.estimate(costmodel.load_assumptions(), tier="mobile_point", years=y)["total_usd"]
        for y in (5, 10)
    ]
    assert totals == pytest.approx(expected, abs=0.01)
    assert totals[1] > totals[0]


@pytest.mark.parametrize(
    "query",
    [
        {"tier": "space_station", "years": 5},
        {"tier": "rural_clinic", "years": 0},
        {"tier": "rural_clinic", "years": "five"},
        {"tier": "rural_clinic", "years": "9" * 400},
    ],
)
def test_bad_form_input_is_a_400_with_the_form_error(client, login, query):
    login("auditor")
    response = client.get(URL, query)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    assert 'id="total-usd"' not in response.content.decode()


@pytest.mark.parametrize("role", ["clinician", "nurse", "clerk"])
def test_clinical_roles_may_not_see_it(client, login, role):
    login(role)
    assert client.get(URL).status_code == 403


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/" in response["Location"]
