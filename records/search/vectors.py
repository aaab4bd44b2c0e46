"""An exact in-memory vector index: a float32 matrix of unit vectors and, beside it, the columns the
filters and permissions need (category, kind, patient, date, code) as small integer arrays.

Pure: numpy only. A query builds a boolean mask from the filters first and ranks only the rows it
lets through, so a row the reader may not see never takes part in ranking. Exact search over 100,000
rows is one matrix-vector product (about 10 ms on 2 cores), so no approximate index is needed here.
"""

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

# The matrix-vector product is memory-bound: a second BLAS thread adds little when the box is idle
# and waits for a core when it is busy (28 ms with one thread against 41 ms with two, at load 9).
_blas = ThreadpoolController()


class Vocabulary:
    """Strings to small integers, so that filters are integer comparisons over arrays."""

    def __init__(self):
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        return self.codes.setdefault(value, len(self.codes))

    def find(self, value: str) -> int:
        return self.codes.get(value, -1)


@dataclass
class RowMeta:
    id: int
    category: str
    kind: str
    patient: str
    date_ordinal: int  # 0 when the chunk has no date
    code: str


@dataclass
class Filters:
    categories: tuple[str, ...]  # what the reader's role may read: always given
    patients: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    date_from: int = 0  # ordinals; 0 means open
    date_to: int = 0


@dataclass
class VectorIndex:
    dimensions: int
    ids: np.ndarray = field(init=False)
    matrix: np.ndarray = field(init=False)
    columns: dict = field(init=False)

    def __post_init__(self):
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, self.dimensions), dtype=np.float32)
        self.columns = {
            name: np.zeros(0, dtype=np.int32) for name in ("category", "kind", "patient", "date", "code")
        }
        self.vocab = {name: Vocabulary() for name in ("category", "kind", "patient", "code")}
        self._role_masks: dict[tuple, np.ndarray] = {}  # the permission part, per set of categories

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.matrix.nbytes + sum(c.nbytes for c in self.columns.values()))

    def add(self, rows: list[RowMeta], vectors: np.ndarray) -> None:
        if len(rows) != len(vectors):
            raise ValueError("one vector per row")
        if not rows:
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(rows), self.dimensions)
        self.ids = np.concatenate([self.ids, np.fromiter((r.id for r in rows), np.int64, len(rows))])
        self.matrix = np.concatenate([self.matrix, vectors])
        new = {
            "category": [self.vocab["category"].code(r.category) for r in rows],
            "kind": [self.vocab["kind"].code(r.kind) for r in rows],
            "patient": [self.vocab["patient"].code(r.patient) for r in rows],
            "code": [self.vocab["code"].code(r.code) for r in rows],
            "date": [r.date_ordinal for r in rows],
        }
        for name, values in new.items():
            self.columns[name] = np.concatenate([self.columns[name], np.asarray(values, dtype=np.int32)])
        self._role_masks.clear()

    def remove(self, ids) -> None:
        keep = ~np.isin(self.ids, np.asarray(list(ids), dtype=np.int64))
        if keep.all():
            return
        self.ids, self.matrix = self.ids[keep], self.matrix[keep]
        self.columns = {name: column[keep] for name, column in self.columns.items()}
        self._role_masks.clear()

    def _allowed(self, name: str, values) -> np.ndarray:
        codes = [self.vocab[name].find(v) for v in values]
        return np.isin(self.columns[name], np.asarray([c for c in codes if c >= 0], dtype=np.int32))

    def role_mask(self, categories: tuple[str, ...]) -> np.ndarray:
        """The rows a reader of these categories may see; kept until the rows change (read-only)."""
        key = tuple(sorted(categories))
        mask = self._role_masks.get(key)
        if mask is None:
            mask = self._allowed("category", key)
            mask.setflags(write=False)
            self._role_masks[key] = mask
        return mask

    def mask(self, filters: Filters) -> np.ndarray:
        mask = self.role_mask(filters.categories)
        if not (filters.patients or filters.kinds or filters.codes or filters.date_from or filters.date_to):
            return mask
        mask = mask.copy()
        if filters.patients:
            mask &= self._allowed("patient", filters.patients)
        if filters.kinds:
            mask &= self._allowed("kind", filters.kinds)
        if filters.codes:
            mask &= self._allowed("code", filters.codes)
        if filters.date_from:
            mask &= self.columns["date"] >= filters.date_from
        if filters.date_to:
            mask &= (self.columns["date"] <= filters.date_to) & (self.columns["date"] > 0)
        return mask

    def search(self, query: np.ndarray, filters: Filters, limit: int) -> list[tuple[int, float]]:
        """(chunk id, cosine) of the best `limit` rows the filters let through, best first."""
        if limit <= 0:
            return []
        mask = self.mask(filters)
        query = np.asarray(query, dtype=np.float32)
        with _blas.limit(limits=1, user_api="blas"):
            if mask.all():  # everything passes (a clinician, no filters): no row list at all
                rows, scores = None, self.matrix @ query
            else:
                rows = np.flatnonzero(mask)
                if rows.size == 0:
                    return []
                if rows.size * 8 < len(self):  # few rows pass: copy them out and score only those
                    scores = self.matrix[rows] @ query
                else:  # most pass: score all in place (no copy); only the passing ones are ranked
                    scores = (self.matrix @ query)[rows]
        take = min(limit, scores.size)
        best = np.argpartition(-scores, take - 1)[:take]
        best = best[np.argsort(-scores[best], kind="stable")]
        positions = best if rows is None else rows[best]
        return [(int(self.ids[p]), float(scores[i])) for p, i in zip(positions, best, strict=True)]
