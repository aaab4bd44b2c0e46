"""The full-text index's schema, kept apart from the models so that the migration never imports them:
an FTS5 table kept in step by triggers on SQLite, a GIN expression index on PostgreSQL."""

# The category is a second FTS5 column so that the reader's permission is part of the MATCH itself
# (an intersection of posting lists) and an unfiltered query needs no join back to the chunk table;
# bm25 gives that column weight 0 (fts.py).
SQLITE_SETUP = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_chunk_fts USING fts5(search_text, category, "
    "content='search_chunk', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS search_chunk_ai AFTER INSERT ON search_chunk BEGIN "
    "INSERT INTO search_chunk_fts(rowid, search_text, category) "
    "VALUES (new.id, new.search_text, new.category); END",
    "CREATE TRIGGER IF NOT EXISTS search_chunk_ad AFTER DELETE ON search_chunk BEGIN "
    "INSERT INTO search_chunk_fts(search_chunk_fts, rowid, search_text, category) "
    "VALUES ('delete', old.id, old.search_text, old.category); END",
    "CREATE TRIGGER IF NOT EXISTS search_chunk_au AFTER UPDATE ON search_chunk BEGIN "
    "INSERT INTO search_chunk_fts(search_chunk_fts, rowid, search_text, category) "
    "VALUES ('delete', old.id, old.search_text, old.category); "
    "INSERT INTO search_chunk_fts(rowid, search_text, category) "
    "VALUES (new.id, new.search_text, new.category); END",
    # Fills the new index from rows already there (a no-op on an empty table).
    "INSERT INTO search_chunk_fts(search_chunk_fts) VALUES ('rebuild')",
]
SQLITE_TEARDOWN = [
    "DROP TRIGGER IF EXISTS search_chunk_au",
    "DROP TRIGGER IF EXISTS search_chunk_ad",
    "DROP TRIGGER IF EXISTS search_chunk_ai",
    "DROP TABLE IF EXISTS search_chunk_fts",
]
POSTGRES_SETUP = [
    "CREATE INDEX IF NOT EXISTS search_chunk_fts ON search_chunk "
    "USING GIN (to_tsvector('simple', search_text))"
]
POSTGRES_TEARDOWN = ["DROP INDEX IF EXISTS search_chunk_fts"]


def install(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    statements = {"sqlite": SQLITE_SETUP, "postgresql": POSTGRES_SETUP}.get(vendor, [])
    for statement in statements:
        schema_editor.execute(statement)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in (
        SQLITE_TEARDOWN if vendor == "sqlite" else POSTGRES_TEARDOWN if vendor == "postgresql" else []
    ):
        schema_editor.execute(statement)
