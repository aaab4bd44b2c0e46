"""The full-text retriever on its own, on whichever database runs the suite (SQLite FTS5 here,
PostgreSQL's tsvector in the `-m db` PostgreSQL run): matching, permissions and filters inside the
query, and questions that try to smuggle in query syntax."""

import datetime as dt

import pytest

from records import services as record_services
from records.search import selectors, services
from records.search.models import Chunk
from records.search.selectors import SearchFilters


@pytest.fixture
def two_charts(db):
    """Two patients of the village Qorvale; one has a clinical note naming it, and a malaria note."""
    first = record_services.register_patient(
        author="t",
        given_name="Rehema",
        family_name="Kassim",
        sex="female",
        birth_date=dt.date(1988, 5, 1),
        village="Qorvale",
    )
    second = record_services.register_patient(
        author="t",
        given_name="Baraka",
        family_name="Mushi",
        sex="male",
        birth_date=dt.date(1979, 7, 9),
        village="Qorvale",
    )
    note = record_services.add_note(
        patient=first, author="t", text="Walked from Qorvale. Fever for two days, paludisme suspected."
    )
    refs = [("Patient", str(first.pk)), ("Patient", str(second.pk)), ("ClinicalNote", str(note.pk))]
    services.index_records(refs=refs)
    return first, second, note


def _fts(user, question, **filters):
    return selectors.retrieve(user=user, question=question, mode="fts", filters=SearchFilters(**filters)).hits


def test_full_text_finds_words_and_synonyms_in_the_readers_categories(make_user, two_charts):
    first, second, note = two_charts
    nurse, clerk = make_user("nurse"), make_user("clerk")
    found = {h.chunk.record_id for h in _fts(nurse, "Qorvale")}
    assert found == {first.pk, second.pk, note.pk}
    # "malaria" reaches the note through its French name (the synonym table), with no embedding at all.
    assert [h.chunk.record_id for h in _fts(nurse, "malaria")] == [note.pk]
    # The clerk's query matches the same word, but only in the chunks their role may read.
    assert {h.chunk.record_id for h in _fts(clerk, "Qorvale")} == {first.pk, second.pk}
    assert _fts(clerk, "paludisme") == []


def test_full_text_applies_patient_type_and_date_filters_in_the_query(make_user, two_charts):
    first, second, note = two_charts
    nurse = make_user("nurse")
    assert {h.chunk.record_id for h in _fts(nurse, "Qorvale", patient_ids=(second.pk,))} == {second.pk}
    assert {h.chunk.record_id for h in _fts(nurse, "Qorvale", kinds=("note",))} == {note.pk}
    day = Chunk.objects.get(record_id=note.pk).date
    assert note.pk in {h.chunk.record_id for h in _fts(nurse, "Qorvale", date_from=day, date_to=day)}
    assert _fts(nurse, "paludisme", date_from=day + dt.timedelta(days=1)) == []
    assert _fts(nurse, "paludisme", date_to=day - dt.timedelta(days=1)) == []


@pytest.mark.parametrize(
    "question",
    [
        'Qorvale" OR "',
        "Qorvale') OR 1=1 --",
        "NEAR(Qorvale fever)",
        "search_text : Qorvale",
        "category : clinical Qorvale",
        "Qorvale* & !fever | (",
        "^Qorvale AND NOT",
        "Qörvâle",
        "qorvale " * 40,
    ],
)
def test_query_syntax_in_a_question_is_only_words(make_user, two_charts, question):
    """Operators, quotes, column names and brackets in a question neither break the query nor widen
    what a clerk may see."""
    first, second, _note = two_charts
    clerk = make_user("clerk")
    hits = _fts(clerk, question)
    assert {h.chunk.record_id for h in hits} == {first.pk, second.pk}
    assert all(h.chunk.category == "demographics" for h in hits)
