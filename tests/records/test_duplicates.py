"""Duplicate suggestions at registration: candidates come from queries ordered by evidence, so that
patients who merely share a birth window cannot crowd out the same person."""

import datetime as dt

import pytest

from accounts.models import User
from records import selectors

from . import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return User.objects.create_user(username="clerk", password="x", role="clerk")


def _suggest(user, **person):
    return selectors.possible_duplicates(user=user, **person)


def test_the_same_person_is_found_among_many_born_the_same_year(clerk, monkeypatch):
    # Each query reads at most 3 rows here: 12 namesakes born near her outnumber that many times over.
    monkeypatch.setattr(selectors, "CANDIDATES_PER_QUERY", 3)
    for n in range(12):
        factories.patient(
            given_name=f"Abasi{n:02d}",
            family_name="Mwangi",
            sex="male",
            phone=f"+2557000000{n:02d}",
            village="Kibaoni",
            birth_date=dt.date(1990, 1, 1) + dt.timedelta(days=20 * n),
        )
    amina = factories.patient(phone="+255799999999")
    found = _suggest(
        clerk,
        given_name="Amina",
        family_name="Mwangi",
        sex="female",
        birth_date=dt.date(1990, 3, 14),
        village="Kibaoni",
        phone="",
    )
    assert [c.patient.pk for c in found] == [amina.pk]
    assert "same birth date" in found[0].reasons and "same village" in found[0].reasons


def test_a_misspelt_name_a_phone_and_a_village_bring_candidates_ranked_best_first(clerk):
    same_phone = factories.patient(given_name="Aminah", phone="+255711111111")
    same_village = factories.patient(
        given_name="Amine", phone="+255722222222", birth_date=dt.date(1991, 1, 1)
    )
    factories.patient(given_name="Baraka", family_name="Kimaro", sex="male", phone="+255733333333")
    found = _suggest(
        clerk,
        given_name="Amina",
        family_name="Mwangi",
        sex="female",
        birth_date=dt.date(1990, 3, 14),
        village="Kibaoni",
        phone="+255711111111",
    )
    assert [c.patient.pk for c in found] == [same_phone.pk, same_village.pk]
    assert found[0].score > found[1].score and "same phone" in found[0].reasons


def test_nothing_to_go_on_or_a_stranger_gives_no_candidates(clerk):
    factories.patient()
    assert _suggest(clerk, given_name="Al", family_name="Bo") == []
    assert (
        _suggest(clerk, given_name="Baraka", family_name="Kimaro", sex="male", birth_date=dt.date(1960, 1, 1))
        == []
    )
