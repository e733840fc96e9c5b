#!/usr/bin/env bash
# Starts a real Switchyard server for the browser tests on a fresh database, with one user
# per role (password in E2E_PASSWORD), and a real SMTP server (aiosmtpd) on $port+7 that writes
# every message it accepts to .data/maildir. Expects `target/debug/switchyard` and `target/site`.
# E2E_DATA picks the data folder (default end2end/.data); E2E_RESTART=1 keeps it and its users,
# as a restarted server would.
set -euo pipefail
port="${1:-3100}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
bin="${SWITCHYARD_BIN:-$root/target/debug/switchyard}"
data="${E2E_DATA:-$here/.data}"
restart="${E2E_RESTART:-0}"
[ "$restart" = 1 ] || { rm -rf "$data" && mkdir -p "$data"; }
export SWITCHYARD_DATABASE_URL="sqlite://$data/e2e.db"
export SWITCHYARD_LISTEN="127.0.0.1:$port"
export SWITCHYARD_PUBLIC_URL="http://127.0.0.1:$port"
export SWITCHYARD_SITE_ROOT="$root/target/site"
export SWITCHYARD_LOG="warn"
# The demo environment on ports of its own: router on $port+80, instances from $port+91.
export SWITCHYARD_DEMO=true
export SWITCHYARD_DEMO_ROUTER="127.0.0.1:$((port + 80))"
export SWITCHYARD_DEMO_FIRST_PORT="$((port + 91))"
export SWITCHYARD_DEMO_TRAFFIC_RPS=20

smtp_pid=""
if python3 -c 'import aiosmtpd' 2>/dev/null; then
  smtp_port="$((port + 7))"
  mkdir -p "$data/maildir/tmp" "$data/maildir/new" "$data/maildir/cur"
  python3 -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$data/maildir" \
    >"$data/aiosmtpd.log" 2>&1 &
  smtp_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break
    sleep 0.1
  done
  export SWITCHYARD_SMTP_HOST=127.0.0.1 SWITCHYARD_SMTP_PORT="$smtp_port" SWITCHYARD_SMTP_TLS=none
  export SWITCHYARD_SMTP_FROM="Switchyard status <status@example.test>"
  export SWITCHYARD_NOTIFY_RETRY_BASE_SECS=1
else
  echo "aiosmtpd is missing (python3 -m pip install aiosmtpd): e-mail notices will wait, status.spec.ts fails" >&2
fi

password="${E2E_PASSWORD:-e2e password long enough}"
if [ "$restart" != 1 ]; then
  for user in admin:admin olivia:operator vera:viewer; do
    printf '%s\n' "$password" | "$bin" user add "${user%%:*}" --role "${user##*:}" --password-stdin
  done
fi
"$bin" serve &
server_pid=$!
# Whoever stops us stops both servers, and returns only once Switchyard has let go of its port.
stop() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  if [ -n "$smtp_pid" ]; then kill -TERM "$smtp_pid" 2>/dev/null || true; fi
}
trap stop EXIT INT TERM
wait "$server_pid"
