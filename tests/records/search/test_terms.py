import numpy as np
import pytest

from records.search.chunking import passages, split_sentences
from records.search.fusion import reciprocal_rank_fusion
from records.search.terms import coverage, dense_query, fts5_expression, query_terms, tsquery_expression
from records.search.vectors import Filters, RowMeta, VectorIndex


def canon(question):
    return [t.canonical for t in query_terms(question)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which patients have HTN?", ["hypertension"]),
        ("shinikizo la damu", ["hypertension"]),
        ("hypertension artérielle", ["hypertension"]),
        ("paludisme", ["malaria"]),
        ("homa ya malaria", ["malaria"]),
        ("last VL", ["viral load"]),
        ("kifua kikuu", ["tuberculosis"]),
    ],
)
def test_abbreviations_and_french_and_swahili_names_expand(question, expected):
    assert canon(question) == expected


def test_the_english_name_is_added_for_the_english_only_model():
    terms = query_terms("paludisme chez l'enfant")
    assert dense_query("paludisme chez l'enfant", terms).endswith("malaria child")


@pytest.mark.parametrize(
    "hostile",
    [
        '"; DROP TABLE search_chunk; --',
        "NEAR(a b) OR * ^x",
        "a' OR '1'='1",
        "{col}: -x",
        "\x00\u202e",
        "é" * 5000,
    ],
)
def test_hostile_questions_give_only_quoted_alphanumeric_terms(hostile):
    terms = query_terms(hostile)
    expression = fts5_expression(terms)
    for alternative in expression.split(" OR ") if expression else []:
        assert alternative.startswith('"') and alternative.endswith('"')
        assert all(c.isalnum() or c == " " for c in alternative.strip('"'))
    assert all(c.isalnum() or c in " |()<->" for c in tsquery_expression(terms))
    assert len(terms) <= 16


def test_coverage_counts_synonyms_as_the_same_term():
    terms = query_terms("HTN amlodipine")
    assert coverage("Known hypertension on amlodipine 5 mg.", terms) == 1.0
    assert coverage("Known hypertension.", terms) == 0.5
    assert coverage("Malaria.", terms) == 0.0


def test_long_notes_are_cut_into_passages_at_sentence_ends():
    text = " ".join(f"Sentence number {i} is here." for i in range(100))
    parts = passages(text, limit=120)
    assert all(len(p) <= 120 for p in parts)
    assert " ".join(parts) == text
    assert passages("x" * 1000, limit=300) == ["x" * 300] * 3 + ["x" * 100]
    assert split_sentences("BP 150/90. On amlodipine. ") == ["BP 150/90.", "On amlodipine."]


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = dict(reciprocal_rank_fusion([1, 2, 3], [3, 4]))
    assert max(fused, key=fused.get) == 3
    assert fused[1] > fused[2] == fused[4]  # same rank in one list each


def test_the_vector_mask_keeps_unreadable_rows_out_of_the_ranking():
    index = VectorIndex(2)
    rows = [
        RowMeta(1, "clinical", "note", "p1", 10, ""),
        RowMeta(2, "demographics", "patient", "p1", 10, ""),
        RowMeta(3, "clinical", "note", "p2", 20, "I10"),
    ]
    index.add(rows, np.array([[1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32))
    query = np.array([1, 0], dtype=np.float32)
    assert [i for i, _ in index.search(query, Filters(categories=("demographics",)), 10)] == [2]
    assert [i for i, _ in index.search(query, Filters(categories=("clinical",), patients=("p2",)), 10)] == [3]
    assert [i for i, _ in index.search(query, Filters(categories=("clinical",), date_to=15), 10)] == [1]
    assert index.search(query, Filters(categories=("clinical",), codes=("E11",)), 10) == []
    index.remove([1])
    assert [i for i, _ in index.search(query, Filters(categories=("clinical", "demographics")), 1)] == [3]


def test_the_model_reads_chunks_without_their_dates_and_codes():
    from records.search.chunking import embedding_text

    assert (
        embedding_text("Diagnosis: Malaria (ICD-10 B54), active, onset 2026-01-02, recorded 2026-01-03.")
        == "Diagnosis: Malaria, active."
    )
    assert (
        embedding_text("Lab result: CD4 count 350 cells/µL on 2026-05-04.")
        == "Lab result: CD4 count 350 cells/µL."
    )
    # A birth date is what a demographics chunk is about: it stays; so does a date inside a sentence.
    kept = "Patient A B (X-1), female, born 1990-01-01. Seen 2026-01-01 at home."
    assert embedding_text(kept) == kept


def test_the_kept_permission_mask_follows_added_and_removed_rows():
    index = VectorIndex(2)
    index.add([RowMeta(1, "clinical", "note", "p1", 0, "")], np.array([[1, 0]], dtype=np.float32))
    query = np.array([1, 0], dtype=np.float32)
    clerk, everyone = Filters(categories=("demographics",)), Filters(categories=("clinical", "demographics"))
    assert index.search(query, clerk, 5) == []  # the mask for demographics is now kept
    index.add([RowMeta(2, "demographics", "patient", "p1", 0, "")], np.array([[0.8, 0.6]], dtype=np.float32))
    assert [i for i, _ in index.search(query, clerk, 5)] == [2]
    assert [i for i, _ in index.search(query, everyone, 5)] == [1, 2]  # all pass: ranked without a row list
    index.remove([2])
    assert index.search(query, clerk, 5) == []
    with pytest.raises(ValueError):  # the kept mask is read-only: no caller can widen it in place
        index.mask(clerk)[0] = True
