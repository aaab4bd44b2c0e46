"""The cost model page in headless Chromium at 360 px: the form recomputes, nothing overflows the screen."""

import pytest

from deploy import costmodel


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_an_auditor_prices_a_rural_clinic_over_ten_years_on_a_phone(live_server, phone_page, sign_in):
    page = phone_page
    sign_in(page, "auditor")
    page.goto(f"{live_server.url}/audit/costmodel/")
    assert fits_the_screen(page)
    page.select_option("#id_tier", "rural_clinic")
    page.fill("#id_years", "10")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    expected = costmodel.estimate(costmodel.load_assumptions(), tier="rural_clinic", years=10)
    assert float(page.inner_text("#total-usd")) == pytest.approx(expected["total_usd"], abs=0.01)
    rows = page.locator("#sensitivity tbody tr")
    assert rows.count() == len(expected["sensitivity"]["rows"])
    assert fits_the_screen(page)  # the wide tables scroll inside their cards
    page.fill("#id_years", "0")
    page.click("main form button[type=submit]")
    assert "years=10" in page.url  # the browser's own check (min=1) keeps the form from going out
    page.goto(f"{live_server.url}/audit/costmodel/?tier=rural_clinic&years=0")  # the server checks too
    assert page.locator(".has-error").count() == 1 and page.locator("#total-usd").count() == 0
