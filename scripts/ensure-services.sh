#!/usr/bin/env bash
# Installs and starts what the test suite needs outside Python: PostgreSQL (running on
# 127.0.0.1:5432), Debian's Chromium for the browser test, and CJK fonts for its screenshots.
# Safe to run again; does nothing when all is present.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Browser and fonts (Playwright drives this Chromium; it never downloads its own).
command -v chromium >/dev/null 2>&1 || apt_install chromium
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || apt_install fonts-noto-cjk

# PostgreSQL: use the local server if it answers, start it if installed, install it if not.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    fresh_install=1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
  if [ "${fresh_install:-}" = "1" ]; then
    # A fresh Debian cluster asks for a password over TCP; give the test role one.
    $SUDO su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
fi
