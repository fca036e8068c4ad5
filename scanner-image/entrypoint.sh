#!/bin/sh
# Starts clamd and the freshclam refresh loop, then the worker. SIGTERM goes to the worker first: it stops
# polling and finishes its in-flight scans (which still need clamd); clamd and freshclam stop after it.
set -eu

DB_DIR=/var/lib/clamav
FRESHCLAM_CONF=/tmp/freshclam.conf

# Official mirror by default; FRESHCLAM_MIRROR_URL points at a private mirror (e.g. an S3/CloudFront cvdupdate copy).
{
  echo "DatabaseDirectory $DB_DIR"
  echo "Foreground yes"
  echo "LogTime yes"
  echo "Checks ${FRESHCLAM_CHECKS_PER_DAY:-12}"
  echo "NotifyClamd /etc/clamav/clamd.conf"
  if [ -n "${FRESHCLAM_MIRROR_URL:-}" ]; then
    echo "PrivateMirror $FRESHCLAM_MIRROR_URL"
  else
    echo "DatabaseMirror database.clamav.net"
  fi
} > "$FRESHCLAM_CONF"

if [ "${FRESHCLAM_ONCE:-}" = "1" ]; then
  # Image build: fetch the signatures and stop.
  exec freshclam --config-file="$FRESHCLAM_CONF" --stdout
fi

if ! ls "$DB_DIR"/*.cvd "$DB_DIR"/*.cld >/dev/null 2>&1; then
  freshclam --config-file="$FRESHCLAM_CONF" --stdout
fi

clamd --config-file=/etc/clamav/clamd.conf &
clamd_pid=$!
freshclam --config-file="$FRESHCLAM_CONF" --daemon --foreground --stdout &
freshclam_pid=$!

node /opt/scanflow/worker.cjs &
worker_pid=$!

stop() {
  kill -TERM "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" || true
  kill -TERM "$freshclam_pid" "$clamd_pid" 2>/dev/null || true
  wait "$clamd_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT

# If the worker exits on its own, the task is unhealthy: exit with its status so ECS replaces the task.
set +e
wait "$worker_pid"
status=$?
kill -TERM "$freshclam_pid" "$clamd_pid" 2>/dev/null
exit "$status"
