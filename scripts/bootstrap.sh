#!/usr/bin/env bash
# Installs what `npm start` and `npm test` need and is missing, and nothing that is already there:
# npm packages, the local AWS emulator (moto) in a project-local virtualenv, and clamd with RAR support.
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

# clamd, plus what the image's clamd has and Debian's main component lacks: RAR support (libclamunrar, in
# non-free). Without it clamd answers OK for a RAR archive it cannot open, so a local run would differ from
# production exactly where a verdict depends on it. `rar` builds RAR fixtures at test time.
have_clamav() {
  { command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ]; } &&
    ls /usr/lib/*/libclamunrar_iface.so.* >/dev/null 2>&1 &&
    command -v rar >/dev/null 2>&1
}
if ! have_clamav; then
  if [ "$(id -u)" = 0 ]; then
    echo "scanflow: installing clamd with RAR support (apt-get install clamav-daemon libclamunrar12 rar)…"
    export DEBIAN_FRONTEND=noninteractive
    . /etc/os-release
    cat > /etc/apt/sources.list.d/scanflow-non-free.sources <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME} ${VERSION_CODENAME}-updates
Components: non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends clamav-daemon clamav libclamunrar12 rar >/dev/null
  else
    echo "scanflow: clamd with RAR support is missing. With Debian's non-free component enabled, install it with:" >&2
    echo "  sudo apt-get install -y clamav-daemon clamav libclamunrar12 rar" >&2
    exit 1
  fi
fi
