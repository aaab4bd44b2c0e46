import io
import json

import pytest
from django.core.management import call_command

from audit.models import AccessEvent
from records import services as record_services
from records.search import selectors, services
from records.search.models import Chunk
from records.search.selectors import SearchFilters

from . import evaluation as ev
from .evaluation import seed


@pytest.fixture
def patient(db):
    import datetime as dt

    return record_services.register_patient(
        author="t", given_name="Amina", family_name="Juma", sex="female", birth_date=dt.date(1990, 1, 1)
    )


@pytest.fixture
def indexed_note(patient):
    note = record_services.add_note(
        patient=patient, author="t", text="Complains of zyxomycosis of the left foot. Started cream."
    )
    services.index_records(refs=[("Patient", str(patient.pk)), ("ClinicalNote", str(note.pk))])
    return note


def test_a_clerk_never_retrieves_a_word_only_in_a_clinical_note(make_user, indexed_note):
    clerk, nurse = make_user("clerk"), make_user("nurse")
    note_chunks = set(Chunk.objects.filter(record_id=indexed_note.pk).values_list("pk", flat=True))
    assert note_chunks
    for mode in ("hybrid", "dense", "fts"):
        hits = selectors.retrieve(user=clerk, question="zyxomycosis", mode=mode).hits
        # Dense search always has a nearest neighbour; for a clerk it can only be a demographics chunk.
        assert {h.chunk.pk for h in hits}.isdisjoint(note_chunks)
        assert all(h.chunk.category == "demographics" for h in hits)
    assert selectors.retrieve(user=clerk, question="zyxomycosis", mode="fts").hits == []
    answer = services.ask(user=clerk, question="zyxomycosis")
    assert not answer.found and answer.passages == []
    found = services.ask(user=nurse, question="zyxomycosis")
    assert found.found and found.passages[0].record_id == str(indexed_note.pk)
    assert any(s.matched and "zyxomycosis" in s.text for s in found.passages[0].sentences)
    # The clerk may still find what they may read: the patient's demographics.
    assert {h.chunk.category for h in selectors.retrieve(user=clerk, question="Amina Juma").hits} == {
        "demographics"
    }


def test_every_search_is_in_the_access_log_with_canonical_detail(make_user, indexed_note):
    nurse = make_user("nurse")
    services.ask(user=nurse, question="zyxomycosis")
    event = AccessEvent.objects.get(action="search")
    assert event.username == nurse.username
    assert event.detail == {"q": "zyxomycosis", "results": 1}


def test_citations_carry_the_ledger_entry_and_the_verified_mark(make_user, indexed_note):
    passage = services.ask(user=make_user("clinician"), question="zyxomycosis foot").passages[0]
    assert passage.entry_index is not None and passage.origin
    assert passage.verified
    body = passage.as_json()
    assert body["ledger_entry"] == {"origin": passage.origin, "index": passage.entry_index}
    assert not any(isinstance(v, float) for v in body.values())


@pytest.mark.parametrize("stored_from", [1, "default"])
def test_the_inclusion_proof_mark_checks_against_the_newest_checkpoint(
    make_user, indexed_note, patient, monkeypatch, stored_from
):
    from ledger import stored_tree
    from ledger.models import Entry, TreeNode
    from ledger.services import seal_checkpoint

    if stored_from != "default":  # every level stored, as logs were before ledger.stored_tree
        monkeypatch.setattr(stored_tree, "STORED_FROM_LEVEL", stored_from)
    clinician = make_user("clinician")
    assert not services.ask(user=clinician, question="zyxomycosis").passages[0].proven  # no checkpoint yet
    for n in range(12):  # a tree of several levels, so the proof reads inner nodes
        record_services.add_note(patient=patient, author="t", text=f"Routine review {n}.")
    seal_checkpoint()
    passage = services.ask(user=clinician, question="zyxomycosis").passages[0]
    assert passage.proven and passage.verified
    # Altered inner nodes of the tree (stored rows, or the other leaves they are recomputed from), and
    # the proof no longer reaches the checkpoint's root.
    entry = Entry.objects.get(origin=passage.origin, index=passage.entry_index)
    if stored_from == 1:
        assert TreeNode.objects.filter(origin=entry.origin).update(hash=b"\x00" * 32)
    else:
        assert not TreeNode.objects.exists()  # 13 entries: below the lowest stored level
        others = Entry.objects.filter(origin=entry.origin).exclude(index=entry.index)
        assert others.update(leaf_hash=b"\x00" * 32)
    assert not services.ask(user=clinician, question="zyxomycosis").passages[0].proven


def test_structured_filters_apply_before_ranking(make_user, indexed_note, patient):
    nurse = make_user("nurse")
    other = SearchFilters(patient_ids=(patient.pk.hex[:8] + "0" * 24,))
    assert selectors.retrieve(user=nurse, question="zyxomycosis", filters=other).hits == []
    only_patients = SearchFilters(kinds=("patient",))
    assert all(
        h.chunk.kind == "patient"
        for h in selectors.retrieve(user=nurse, question="foot", filters=only_patients).hits
    )


@pytest.mark.parametrize("question", ["", "   ", "x" * 501, "a\x00b", None])
def test_bad_questions_are_refused_and_log_nothing(make_user, question):
    with pytest.raises(services.BadQuestion):
        services.ask(user=make_user("nurse"), question=question)
    assert not AccessEvent.objects.filter(action="search").exists()


def test_a_changed_record_is_reindexed_after_commit(db, settings, django_capture_on_commit_callbacks):
    import datetime as dt

    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SEARCH_INDEX_ON_WRITE = True
    # Every write of the test is inside the capture: the writes of one transaction share one task.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        patient = record_services.register_patient(
            author="t", given_name="Neema", family_name="Said", sex="female", birth_date=dt.date(1991, 2, 3)
        )
        note = record_services.add_note(patient=patient, author="t", text="Quokkaitis suspected.")
    assert len(callbacks) == 1
    assert Chunk.objects.filter(record_id=patient.pk).count() == 1
    assert Chunk.objects.filter(record_id=note.pk).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        record_services.update_patient(patient=patient, author="t", village="Mbuyuni")
    texts = list(Chunk.objects.filter(record_id=patient.pk).values_list("text", flat=True))
    assert len(texts) == 1 and "village Mbuyuni" in texts[0]


def test_the_command_answers_as_json_and_by_file(make_user, indexed_note, tmp_path):
    make_user("nurse")
    out = io.StringIO()
    call_command("search", "ask", "zyxomycosis", "--user", "test_nurse", "--json", stdout=out)
    body = json.loads(out.getvalue())
    assert body["found"] and body["passages"][0]["record"] == str(indexed_note.pk)
    questions = tmp_path / "q.txt"
    questions.write_text("zyxomycosis\n\nsnake bite\n" + "y" * 600 + "\n", encoding="utf-8")
    out = io.StringIO()
    call_command("search", "ask", "--file", str(questions), "--user", "test_nurse", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line.get("found") for line in lines] == [True, False, None]
    assert "error" in lines[2]
    with pytest.raises(SystemExit) as exit_info:
        call_command("search", "ask", "snake bite", "--user", "test_nurse", stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_the_command_refuses_bad_arguments_with_status_2(make_user, tmp_path):
    from django.core.management.base import CommandError

    make_user("nurse")
    for args in (
        ["ask", "x", "--user", "nobody"],
        ["ask", "--file", str(tmp_path / "none"), "--user", "test_nurse"],
    ):
        with pytest.raises(CommandError) as error:
            call_command("search", *args)
        assert error.value.returncode == 2


def test_the_api_answers_signed_in_users_and_refuses_others(client, login, indexed_note):
    assert client.get("/api/search", {"q": "zyxomycosis"}).status_code == 401
    login("clinician")
    response = client.get("/api/search", {"q": "zyxomycosis"})
    assert response.status_code == 200 and response.json()["found"]
    assert client.get("/api/search", {"q": "x", "from": "2026-13-01"}).status_code == 400
    assert client.get("/api/search", {"q": ""}).status_code == 400


def test_the_results_page_and_the_chart_box(client, login, indexed_note, patient):
    login("nurse")
    page = client.get("/search/", {"q": "zyxomycosis"})
    assert page.status_code == 200 and b"<mark>" in page.content
    partial = client.get("/search/", {"q": "wombat", "patient": str(patient.pk)}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and b"Not found in the records" in partial.content
    assert b"ask-chart" in client.get(f"/patients/{patient.pk}/").content


def test_hybrid_retrieval_reaches_a_floor_on_the_seeded_evaluation(make_user):
    """A small version of the benchmark: 40 seeded patients, every labelled question, each retriever.
    Hybrid must clear the floor and not fall behind either retriever alone; the answer threshold must
    refuse most questions whose answer is absent and answer most of the others."""
    by_scenario = seed(patients=40, seed=7)
    services.reindex_all()
    user = make_user("clinician")
    recalls: dict[str, list] = {"hybrid": [], "dense": [], "fts": []}
    refused_absent, answered = [], []
    for question in ev.questions(by_scenario):
        filters = SearchFilters(patient_ids=(question.patient_id,)) if question.patient_id else None
        for mode, values in recalls.items():
            got = selectors.retrieve(user=user, question=question.text, filters=filters, mode=mode, limit=10)
            if question.relevant:
                ranked = ev.unique_records([str(h.chunk.record_id) for h in got.hits])
                values.append(ev.recall_at(ranked, question.relevant, 5))
            if mode == "hybrid":
                top = max((h.support for h in got.hits), default=0)
                (answered if question.scenario else refused_absent).append(
                    (top >= selectors.ANSWER_THRESHOLD) == bool(question.scenario)
                )
    mean = {mode: sum(values) / len(values) for mode, values in recalls.items()}
    assert len(recalls["hybrid"]) >= 60
    assert mean["hybrid"] >= 0.85
    assert mean["hybrid"] >= max(mean["dense"], mean["fts"])
    assert sum(refused_absent) / len(refused_absent) >= 0.8
    assert sum(answered) / len(answered) >= 0.9
