#!/usr/bin/env bash
# Starts a real Switchyard server for the browser tests on a fresh database, with one user
# per role (password in E2E_PASSWORD). Expects `target/debug/switchyard` and `target/site`.
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
export SWITCHYARD_SITE_ROOT="$root/target/site"
export SWITCHYARD_LOG="warn"
# The demo environment on ports of its own: router on $port+80, instances from $port+91.
export SWITCHYARD_DEMO=true
export SWITCHYARD_DEMO_ROUTER="127.0.0.1:$((port + 80))"
export SWITCHYARD_DEMO_FIRST_PORT="$((port + 91))"
export SWITCHYARD_DEMO_TRAFFIC_RPS=20
password="${E2E_PASSWORD:-e2e password long enough}"
if [ "$restart" != 1 ]; then
  for user in admin:admin olivia:operator vera:viewer; do
    printf '%s\n' "$password" | "$bin" user add "${user%%:*}" --role "${user##*:}" --password-stdin
  done
fi
exec "$bin" serve
