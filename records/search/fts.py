"""Full-text search in the node's own database: SQLite FTS5 on small tiers, PostgreSQL's tsvector
with a GIN index on big ones. Both use plain tokenisation (no stemming, no language) over the folded
text, since notes mix English, French, Swahili and abbreviations.

The reader's categories and the filters are part of the SQL, so rows the reader may not see are
never matched, let alone ranked.
"""

from django.db import connection

from .models import Chunk
from .terms import Term, fts5_expression, tsquery_expression
from .vectors import Filters


def _prep(field_name: str, value):
    return Chunk._meta.get_field(field_name).get_db_prep_value(value, connection, prepared=False)


def _in(column: str, field_name: str, values, where: list, params: list) -> None:
    where.append(f"c.{column} IN ({', '.join(['%s'] * len(values))})")
    params.extend(_prep(field_name, v) for v in values)


def _filters_sql(filters: Filters, dates: tuple) -> tuple[str, list]:
    where: list[str] = []
    params: list = []
    _in("category", "category", filters.categories, where, params)
    if filters.patients:
        _in("patient_id", "patient_id", filters.patients, where, params)
    if filters.kinds:
        _in("kind", "kind", filters.kinds, where, params)
    if filters.codes:
        _in("code", "code", filters.codes, where, params)
    date_from, date_to = dates
    if date_from:
        where.append("c.date >= %s")
        params.append(_prep("date", date_from))
    if date_to:
        where.append("c.date <= %s")
        params.append(_prep("date", date_to))
    return " AND ".join(where), params


ALL_CATEGORIES = frozenset(Chunk.Category.values)
BM25_WEIGHTS = "1.0, 0.0"  # search_text, category: the category column only filters, never scores


def _fts5_match(terms: list[Term], categories: tuple[str, ...]) -> str:
    """The FTS5 MATCH expression: the question's terms in the text, and, unless the reader may read
    every category, one of theirs in the category column (fixed choice values, never user text)."""
    expression = f"search_text : ({fts5_expression(terms)})"
    if set(categories) != ALL_CATEGORIES:
        if not set(categories) <= ALL_CATEGORIES:
            raise ValueError(f"unknown categories: {sorted(set(categories) - ALL_CATEGORIES)}")
        expression += " AND category : (" + " OR ".join(f'"{c}"' for c in sorted(categories)) + ")"
    return expression


def _has_structured_filters(filters: Filters, dates: tuple) -> bool:
    return bool(filters.patients or filters.kinds or filters.codes or dates[0] or dates[1])


def search(terms: list[Term], filters: Filters, dates: tuple, limit: int) -> list[tuple[int, float]]:
    """(chunk id, relevance) of the best `limit` matches, best first; relevance is higher-is-better."""
    if not terms or not filters.categories or limit <= 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            match = _fts5_match(terms, filters.categories)
            bm25 = f"bm25(search_chunk_fts, {BM25_WEIGHTS})"
            if not _has_structured_filters(filters, dates):
                # The permission is in the MATCH: rank the full-text index alone, no join per match.
                cursor.execute(
                    f"SELECT rowid, -{bm25} FROM search_chunk_fts "  # noqa: S608 (constants only)
                    f"WHERE search_chunk_fts MATCH %s ORDER BY {bm25} LIMIT %s",
                    [match, limit],
                )
            else:
                where, params = _filters_sql(filters, dates)
                cursor.execute(
                    # `where` holds fixed column names and %s placeholders only.
                    f"SELECT c.id, -{bm25} FROM search_chunk_fts "  # noqa: S608
                    "JOIN search_chunk c ON c.id = search_chunk_fts.rowid "
                    f"WHERE search_chunk_fts MATCH %s AND {where} "
                    f"ORDER BY {bm25} LIMIT %s",
                    [match, *params, limit],
                )
        elif connection.vendor == "postgresql":
            where, params = _filters_sql(filters, dates)
            cursor.execute(
                "SELECT c.id, ts_rank_cd(to_tsvector('simple', c.search_text), q) AS rank "  # noqa: S608
                "FROM search_chunk c, to_tsquery('simple', %s) q "
                f"WHERE to_tsvector('simple', c.search_text) @@ q AND {where} "
                "ORDER BY rank DESC, c.id LIMIT %s",
                [tsquery_expression(terms), *params, limit],
            )
        else:
            raise RuntimeError(f"no full-text search for the {connection.vendor} database")
        return [(int(row[0]), float(row[1])) for row in cursor.fetchall()]
