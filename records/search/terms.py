"""What a question asks for, as terms: folded words without stop words, with each word or phrase
widened to its group of synonyms, abbreviations and French and Swahili names (data/synonyms.txt).

Pure: no Django. Tokens are [a-z0-9]+ after folding, so whatever a user types, the full-text query
built from them holds no operator, quote or bracket of theirs.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data"
MAX_QUESTION_CHARS = 500
MAX_TERMS = 16
_TOKEN = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(fold(text))


@dataclass(frozen=True)
class Term:
    """One thing the question asks for: the alternatives that count as a match (token tuples)."""

    alternatives: tuple[tuple[str, ...], ...]
    canonical: str  # the English name, for the embedding model
    expanded: bool  # from the synonym table


@cache
def synonym_groups() -> tuple[tuple[tuple[str, ...], ...], ...]:
    groups = []
    for line in (DATA / "synonyms.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            group = tuple(tuple(tokens(term)) for term in line.split("|") if tokens(term))
            if group:
                groups.append(group)
    return tuple(groups)


@cache
def _phrase_index() -> dict[tuple[str, ...], int]:
    index: dict[tuple[str, ...], int] = {}
    for number, group in enumerate(synonym_groups()):
        for phrase in group:
            index.setdefault(phrase, number)
    return index


@cache
def stop_words() -> frozenset[str]:
    text = (DATA / "stopwords.txt").read_text(encoding="utf-8")
    return frozenset(word for line in text.splitlines() if not line.startswith("#") for word in tokens(line))


def query_terms(question: str) -> list[Term]:
    """The terms of a question, longest synonym phrase first, in question order, at most MAX_TERMS."""
    words = tokens(question[:MAX_QUESTION_CHARS])
    index, groups = _phrase_index(), synonym_groups()
    longest = max((len(p) for p in index), default=1)
    terms: list[Term] = []
    seen: set = set()
    position = 0
    while position < len(words) and len(terms) < MAX_TERMS:
        for size in range(min(longest, len(words) - position), 0, -1):
            phrase = tuple(words[position : position + size])
            if phrase in index:
                number = index[phrase]
                if number not in seen:
                    seen.add(number)
                    group = groups[number]
                    terms.append(Term(group, " ".join(group[0]), True))
                position += size
                break
        else:
            word = words[position]
            position += 1
            if word not in stop_words() and len(word) > 1 and word not in seen:
                seen.add(word)
                terms.append(Term(((word,),), word, False))
    return terms


def dense_query(question: str, terms: list[Term]) -> str:
    """The question with the English name of every expanded term added, for an English-only model."""
    extra = [t.canonical for t in terms if t.expanded and t.canonical not in fold(question)]
    return f"{question.strip()[:MAX_QUESTION_CHARS]} {' '.join(extra)}".strip()


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1))


def matched_terms(text: str, terms: list[Term]) -> int:
    words = tokens(text)
    return sum(1 for term in terms if any(_contains(words, alt) for alt in term.alternatives))


def coverage(text: str, terms: list[Term]) -> float:
    """The share of the question's terms that the text contains (any alternative of each)."""
    return matched_terms(text, terms) / len(terms) if terms else 0.0


def alternatives(terms: list[Term]) -> list[tuple[str, ...]]:
    out, seen = [], set()
    for term in terms:
        for alt in term.alternatives:
            if alt not in seen:
                seen.add(alt)
                out.append(alt)
    return out


def fts5_expression(terms: list[Term]) -> str:
    """SQLite FTS5: any alternative of any term; phrases quoted (tokens are [a-z0-9]+ only)."""
    return " OR ".join('"' + " ".join(alt) + '"' for alt in alternatives(terms))


def tsquery_expression(terms: list[Term]) -> str:
    """PostgreSQL to_tsquery('simple', ...): the same, with <-> between the words of a phrase."""
    return " | ".join("(" + " <-> ".join(alt) + ")" for alt in alternatives(terms))
