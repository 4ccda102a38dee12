#!/usr/bin/env bash
# Set up and run the whole test suite (lint, types, SQLite, PostgreSQL, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec bash scripts/test-all.sh "$@"
