#!/usr/bin/env bash
# Back up a Zhixing PostgreSQL database, restore the backup into a fresh database, and prove the
# copy is whole: `zhixing audit verify` walks its audit chain, and every table has as many rows
# as the original. Exit 0 only when both hold. The fresh database is dropped at the end unless
# --keep is given. Usage:
#
#   scripts/backup-check.sh [--keep] [--dump FILE] [DATABASE_URL]
#
# DATABASE_URL defaults to ZHIXING_DATABASE_URL (SQLAlchemy form, postgresql+psycopg://...).
# The dump is PostgreSQL's custom format (pg_dump -Fc), the one docs/production.md schedules.
# Counts are taken after the dump: point it at a quiet database (a standby, a drill's copy),
# or rows written meanwhile show up as a difference.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=""
dump=""
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1; shift ;;
    --dump) dump=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
url=${1:-${ZHIXING_DATABASE_URL:-}}
case "$url" in
  postgresql*) ;;
  *) echo "backup-check: give a PostgreSQL URL (got '${url:-nothing}')" >&2; exit 2 ;;
esac
ZHIXING=${ZHIXING:-.venv/bin/zhixing}

libpq=${url/postgresql+psycopg:/postgresql:}   # the URL psql and pg_dump understand
server=${libpq%/*}                              # without the database name
source_db=${libpq##*/}
source_db=${source_db%%\?*}
copy_db="${source_db}_restore_$(date +%Y%m%d%H%M%S)"
[ -n "$dump" ] || dump=$(mktemp --suffix=.dump)

echo "== backing up $source_db to $dump"
pg_dump --format=custom --no-owner --file="$dump" "$libpq"
echo "== restoring into $copy_db"
psql -q -v ON_ERROR_STOP=1 "$server/postgres" -c "CREATE DATABASE \"$copy_db\""
cleanup() {
  if [ -z "$keep" ]; then
    psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS \"$copy_db\" WITH (FORCE)" || true
  fi
}
trap cleanup EXIT
pg_restore --no-owner --exit-on-error --dbname="$server/$copy_db" "$dump"

echo "== verifying the copy's audit chain"
ZHIXING_DATABASE_URL="${url%/*}/$copy_db" "$ZHIXING" audit verify

echo "== comparing row counts"
count_rows() {
  psql -At "$1" -c "SELECT format('SELECT %L, count(*) FROM public.%I;', table_name,
      table_name) FROM information_schema.tables WHERE table_schema = 'public'
      AND table_type = 'BASE TABLE' ORDER BY table_name" \
    | psql -At -F ' ' "$1"
}
diff <(count_rows "$libpq") <(count_rows "$server/$copy_db") >/dev/null || {
  echo "backup-check: row counts differ:" >&2
  diff <(count_rows "$libpq") <(count_rows "$server/$copy_db") >&2 || true
  exit 1
}
tables=$(count_rows "$libpq" | wc -l)
echo "backup-check: OK: $tables tables, same row counts, audit chain intact ($dump)"
