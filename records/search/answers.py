"""Grounded, extractive answers: the best passages, their matching sentences marked, each citing its
record, date and ledger entry with a "verified" mark; or an explicit "not found in the records".

A future local language model plugs in as an AnswerGenerator: it gets the question and the cited
passages, and may only phrase what they say. None ships; ExtractiveAnswer is the default.
"""

from dataclasses import dataclass, field
from typing import Protocol

from django.urls import reverse

from ledger import merkle
from ledger import selectors as ledger_selectors
from ledger.models import Checkpoint
from records import models as records_models
from records.selectors import verification_marks

from .chunking import split_sentences
from .selectors import ANSWER_THRESHOLD, Hit, Retrieval
from .terms import Term, matched_terms

MAX_PASSAGES = 5


@dataclass(frozen=True)
class Sentence:
    text: str
    matched: bool


@dataclass
class Passage:
    record_id: str
    record_type: str
    kind: str
    patient_id: str
    date: str
    text: str
    sentences: list[Sentence]
    score: float
    support: float
    origin: str
    entry_index: int | None
    verified: bool  # the row equals its latest ledger entry (the chart's mark)
    proven: bool  # and that entry's inclusion proof checks against the newest signed checkpoint
    chart_url: str
    ledger_url: str

    def as_json(self) -> dict:
        """Canonical-JSON-friendly: scores as decimal strings, never floats."""
        return {
            "record": self.record_id,
            "record_type": self.record_type,
            "kind": self.kind,
            "patient": self.patient_id,
            "date": self.date,
            "text": self.text,
            "highlights": [s.text for s in self.sentences if s.matched],
            "score": f"{self.score:.4f}",
            "support": f"{self.support:.3f}",
            "ledger_entry": {"origin": self.origin, "index": self.entry_index},
            "verified": self.verified,
            "inclusion_proof": self.proven,
            "link": self.chart_url,
        }


@dataclass
class Answer:
    question: str
    found: bool
    passages: list[Passage] = field(default_factory=list)
    text: str = ""  # what a generator wrote; empty for extractive answers

    def as_json(self) -> dict:
        return {
            "question": self.question,
            "found": self.found,
            "answer": self.text,
            "passages": [p.as_json() for p in self.passages],
        }


class AnswerGenerator(Protocol):
    """Turns cited passages into prose. It must not add facts: each sentence it writes has to come
    from the passages, which stay attached to the answer as its citations."""

    def generate(self, question: str, passages: list[Passage]) -> str: ...


class ExtractiveAnswer:
    """No prose at all: the passages are the answer."""

    def generate(self, question: str, passages: list[Passage]) -> str:
        return ""


def highlight(text: str, terms: list[Term]) -> list[Sentence]:
    return [Sentence(s, matched_terms(s, terms) > 0) for s in split_sentences(text)]


def _records(hits: list[Hit]) -> list:
    by_type: dict[str, set] = {}
    for hit in hits:
        by_type.setdefault(hit.chunk.record_type, set()).add(hit.chunk.record_id)
    rows = []
    for record_type, ids in by_type.items():
        rows.extend(getattr(records_models, record_type).objects.filter(pk__in=ids))
    return rows


def _newest_checkpoints(origins: set) -> dict:
    newest: dict = {}
    for checkpoint in Checkpoint.objects.filter(origin__in=origins).order_by("origin", "-size"):
        newest.setdefault(checkpoint.origin, checkpoint)
    return newest


def _proof_nodes(origin: str, leaves: set, size: int) -> dict:
    """Every hash the inclusion proofs of these leaves need, in two queries (ledger.selectors.nodes_at):
    a proof's path depends only on (index, size), so a first pass with a stand-in hash lists them."""
    wanted: set = {(0, index) for index in leaves}

    def note(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    for index in leaves:
        merkle.inclusion_proof(index, size, note)
    return ledger_selectors.nodes_at(origin, wanted)


def _included(hits: list[Hit]) -> set:
    """(origin, index) of the cited entries whose inclusion proof checks against their origin's newest
    checkpoint; an entry after the newest checkpoint has no proof yet. A few queries per origin, not
    one per tree node."""
    by_origin: dict[str, set] = {}
    for hit in hits:
        if hit.chunk.entry_index is not None:
            by_origin.setdefault(hit.chunk.origin, set()).add(hit.chunk.entry_index)
    checkpoints = _newest_checkpoints(set(by_origin))
    included = set()
    for origin, indexes in by_origin.items():
        checkpoint = checkpoints.get(origin)
        if checkpoint is None:
            continue
        size, root = checkpoint.size, bytes(checkpoint.root_hash)
        leaves = {index for index in indexes if index < size}
        nodes = _proof_nodes(origin, leaves, size) if leaves else {}
        for index in leaves:
            try:
                proof = merkle.inclusion_proof(index, size, lambda level, i, nodes=nodes: nodes[(level, i)])
                merkle.verify_inclusion(nodes[(0, index)], index, size, proof, root)
            except (merkle.ProofError, KeyError):  # a missing or altered node: no mark
                continue
            included.add((origin, index))
    return included


def build_answer(retrieval: Retrieval, generator: AnswerGenerator | None = None) -> Answer:
    hits = [hit for hit in retrieval.hits if hit.support >= ANSWER_THRESHOLD][:MAX_PASSAGES]
    if not hits:
        return Answer(question=retrieval.question, found=False)
    marks = verification_marks(_records(hits))
    included = _included(hits)
    passages = []
    for hit in hits:
        chunk = hit.chunk
        passages.append(
            Passage(
                record_id=str(chunk.record_id),
                record_type=chunk.record_type,
                kind=chunk.kind,
                patient_id=str(chunk.patient_id),
                date=chunk.date.isoformat() if chunk.date else "",
                text=chunk.text,
                sentences=highlight(chunk.text, retrieval.terms),
                score=hit.score,
                support=hit.support,
                origin=chunk.origin,
                entry_index=chunk.entry_index,
                verified=marks.get(chunk.record_id, False),
                proven=(chunk.origin, chunk.entry_index) in included,
                chart_url=reverse("records:chart", args=[chunk.patient_id]),
                ledger_url=reverse("ledger:history", args=[chunk.record_id]),
            )
        )
    text = (generator or ExtractiveAnswer()).generate(retrieval.question, passages)
    return Answer(question=retrieval.question, found=True, passages=passages, text=text)
