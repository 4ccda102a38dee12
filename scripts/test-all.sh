#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, types, then pytest on SQLite and on PostgreSQL
# side by side (each run includes the browser tests). Called by `make test` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

bash scripts/ensure-services.sh

echo "== ruff"
$BIN/ruff check src tests bench scripts
echo "== mypy"
$BIN/mypy

export ZHIXING_TEST_PG_ADMIN_URL="${ZHIXING_TEST_PG_ADMIN_URL:-postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres}"
# The two backends run at the same time, each its own pytest session with its own scratch
# database, data directory and ports: most tests wait on a server, a browser or a lock, so two
# sessions use two cores where one leaves one idle. Each line is tagged with its backend.
run_backend() {
  local backend=$1; shift
  ZHIXING_TEST_BACKEND=$backend $BIN/pytest -p no:cacheprovider --durations=15 "$@" 2>&1 \
    | sed -u "s/^/[$backend] /"
  return "${PIPESTATUS[0]}"
}
echo "== pytest on SQLite and on PostgreSQL"
run_backend sqlite "$@" &
sqlite_pid=$!
run_backend postgresql "$@" &
postgresql_pid=$!
status=0
wait "$sqlite_pid" || { echo "== pytest on SQLite FAILED"; status=1; }
wait "$postgresql_pid" || { echo "== pytest on PostgreSQL FAILED"; status=1; }
exit "$status"
