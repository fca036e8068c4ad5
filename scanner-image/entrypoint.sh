#!/bin/bash
# Starts clamd and the freshclam refresh loop, then the worker, and keeps the task alive only while both
# clamd and the worker run: when either exits, the task exits so ECS replaces it. SIGTERM goes to the worker
# first: it stops polling and finishes its in-flight scans (which still need clamd); clamd and freshclam stop
# after it.
#
# bash, not sh: noticing whichever of clamd and the worker exits first needs `wait -n` (bash 5.1+ for the
# PID list and -p; the clamav/clamav-debian base has bash 5.2). POSIX sh can wait for one named process or
# for all of them, so it could only notice a dead clamd by polling it.
set -eu

DB_DIR=/var/lib/clamav
# TMPDIR is unset in the image (so /tmp); a test running this script with stub programs points it elsewhere.
FRESHCLAM_CONF=${TMPDIR:-/tmp}/freshclam.conf

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
  # Already shutting down: a second TERM must not reach the worker, which treats it as "exit now".
  trap '' TERM INT
  kill -TERM "$worker_pid" 2>/dev/null || true
  wait "$worker_pid" || true
  kill -TERM "$freshclam_pid" "$clamd_pid" 2>/dev/null || true
  wait "$clamd_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT

# freshclam is not waited for: without it signatures age, but scans stay correct.
set +e
exited=
wait -n -p exited "$clamd_pid" "$worker_pid"
status=$?
trap '' TERM INT

if [ "$exited" = "$clamd_pid" ]; then
  # clamd is gone (a crash, ExitOnOOM): every scan on this task would fail until ECS's health check noticed.
  # Stop the worker now: it fails the scans it holds with ScannerUnavailableError, which the state machine
  # retries on another task. Exit non-zero (even if clamd exited 0) so ECS replaces the task.
  echo "scanflow-entrypoint: clamd exited with status $status; stopping the worker" >&2
  kill -TERM "$worker_pid" 2>/dev/null
  wait "$worker_pid"
  kill -TERM "$freshclam_pid" 2>/dev/null
  if [ "$status" -eq 0 ]; then status=1; fi
  exit "$status"
fi

# The worker exited on its own: the task is unhealthy. Exit with its status so ECS replaces the task.
echo "scanflow-entrypoint: worker exited with status $status; stopping clamd" >&2
kill -TERM "$freshclam_pid" "$clamd_pid" 2>/dev/null
exit "$status"
