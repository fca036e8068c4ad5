#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need and is missing, and nothing that is already there:
# npm packages, the local AWS emulator (moto) in a project-local virtualenv, and clamd.
# Safe to run again; quiet when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_SPEC='moto[server]==5.2.5'
VENV=.venv

if [ ! -x node_modules/.bin/tsx ]; then
  echo "scanflow: installing npm packages (npm ci)…"
  npm ci --no-audit --no-fund
fi

if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import moto, sys; sys.exit(0 if moto.__version__ == "5.2.5" else 1)' 2>/dev/null; then
  echo "scanflow: installing the local AWS emulator ($MOTO_SPEC) into $VENV…"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_SPEC"
fi

if ! command -v clamd >/dev/null 2>&1 && [ ! -x /usr/sbin/clamd ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "scanflow: installing clamd (apt-get install clamav-daemon)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends clamav-daemon clamav >/dev/null
  else
    echo "scanflow: clamd is missing. Install it with:" >&2
    echo "  sudo apt-get install -y clamav-daemon clamav" >&2
    exit 1
  fi
fi
