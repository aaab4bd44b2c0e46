"""Exit 0 if the PostgreSQL server in the URL answers, 1 if not (used by scripts/test.sh)."""

import sys

import dj_database_url
import psycopg

config = dj_database_url.parse(sys.argv[1])
try:
    psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=3,
    ).close()
except psycopg.OperationalError as error:
    print(f"PostgreSQL unreachable: {error}".strip(), file=sys.stderr)
    sys.exit(1)
