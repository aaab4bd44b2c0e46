"""Rows written with one executemany of their database values.

bulk_create compiles its SQL field by field for every row: with the ledger's own inserts that was the
largest cost of an initial sync and of bulk demo seeding. Used where signals are fired by the caller
or are not wanted (records.replication, records.demo_bulk)."""

from django.db import transaction


def insert_rows(model, rows: list) -> None:
    """INSERT `rows` (unsaved instances of `model`, primary keys set) in one executemany; afterwards
    they are in the state bulk_create leaves them in: saved rows."""
    if not rows:
        return
    connection = transaction.get_connection()
    fields = model._meta.concrete_fields
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    values = [tuple(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias
