#!/usr/bin/env bash
# What `make up` and `make install` cost on a fresh clone of this repository, pip's cache off
# (as on a fresh machine): the time of each install and the size of its .venv, and how long the
# first `streamfleet up` takes to say it is up (it makes its embedded PostgreSQL then).
#     bash bench/install_time.sh [PORT]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-18555}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_NO_CACHE_DIR=1

git clone -q "$repo" "$work/run" && cd "$work/run"
began=$(date +%s.%N)
make .venv/.installed-run >"$work/run.log" 2>&1
installed=$(date +%s.%N)
.venv/bin/streamfleet up --port "$port" --data-dir "$work/run/.streamfleet" >"$work/up.log" 2>&1 &
up_pid=$!
until grep -q "streamfleet is up" "$work/up.log"; do
  kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log"; exit 1; }
  sleep 0.2
done
ready=$(date +%s.%N)
kill -INT "$up_pid"; wait "$up_pid" || true
printf 'make up installs: %.1f s, %s MB; then up in %.1f s (first run)\n' \
  "$(echo "$installed - $began" | bc)" "$(du -sm .venv | cut -f1)" "$(echo "$ready - $installed" | bc)"

git clone -q "$repo" "$work/dev" && cd "$work/dev"
began=$(date +%s.%N)
make .venv/.installed >"$work/dev.log" 2>&1
installed=$(date +%s.%N)
printf 'make install (the test tools too): %.1f s, %s MB\n' \
  "$(echo "$installed - $began" | bc)" "$(du -sm .venv | cut -f1)"
