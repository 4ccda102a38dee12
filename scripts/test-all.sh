#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, types, then pytest on SQLite and on PostgreSQL
# (each run includes the browser test). Called by `make test` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

bash scripts/ensure-services.sh

echo "== ruff"
$BIN/ruff check src tests bench scripts
echo "== mypy"
$BIN/mypy

export ZHIXING_TEST_PG_ADMIN_URL="${ZHIXING_TEST_PG_ADMIN_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres}"
echo "== pytest on SQLite"
ZHIXING_TEST_BACKEND=sqlite $BIN/pytest -p no:cacheprovider "$@"
echo "== pytest on PostgreSQL"
ZHIXING_TEST_BACKEND=postgresql $BIN/pytest -p no:cacheprovider "$@"
