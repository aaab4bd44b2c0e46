#!/usr/bin/env bash
# The whole check: lint, the suite on SQLite, then the database tests again on PostgreSQL.
# Without PostgreSQL a user's run skips that part with a message; CI (CI=true) fails instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_URL=${SILICONHEALTH_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/siliconhealth}
WORKERS=${TEST_WORKERS:-2}

home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
export SILICONHEALTH_HOME=$home

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .  # one layout for everyone: `ruff format .` fixes it

echo "== pytest on SQLite"
$BIN/pytest -q -n "$WORKERS" -p no:cacheprovider -m "not e2e and not powerloss and not reliability_slow"

# Browser tests run on their own: Playwright's sync API keeps an event loop running in the test
# process, which would break the asyncio tests (Stratum, devices) that share a worker with it.
echo "== browser tests (headless Chromium)"
$BIN/pytest -q -p no:cacheprovider -m e2e

if $BIN/python scripts/pg_ready.py "$PG_URL"; then
  echo "== pytest on PostgreSQL (database tests)"
  DATABASE_URL=$PG_URL SILICONHEALTH_HOME=$home/pg $BIN/pytest -q -n "$WORKERS" -p no:cacheprovider -m "db and not e2e and not powerloss and not reliability_slow"
elif [ "${CI:-}" = "true" ] || [ "${SILICONHEALTH_REQUIRE_POSTGRES:-}" = "1" ]; then
  echo "PostgreSQL is expected at $PG_URL but is unreachable: failing." >&2
  exit 1
else
  echo "== PostgreSQL not reachable at $PG_URL: skipped the PostgreSQL run (set SILICONHEALTH_TEST_POSTGRES_URL to point at one)."
fi
