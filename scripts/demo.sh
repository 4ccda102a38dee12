#!/usr/bin/env bash
# Set up and start Zhixing with demo data on SQLite: http://127.0.0.1:8000/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/zhixing demo "$@"
