#!/usr/bin/env bash
# PostgreSQL's CPU per request during one `trilo bench` scenario, for comparing two builds
# (README, "Batch writers on connections of their own"). Runs the scenario for 14 s on a
# scratch database and, over 5 s in its middle, adds up the user and system time
# (/proc/PID/stat) of every backend connected to that database, divided by the requests
# the run answered in that time (its average rate).
#
#   TRILO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
#     scripts/postgres-cpu.sh target/release/trilo refresh-rotation
#
# Needs Linux, ps and python3, and PostgreSQL on this machine; the build must have the
# `bench` feature.
set -euo pipefail
bin=${1:?usage: postgres-cpu.sh TRILO_BINARY SCENARIO}
scenario=${2:?usage: postgres-cpu.sh TRILO_BINARY SCENARIO}
report=$(mktemp)
trap 'rm -f "$report"' EXIT

"$bin" bench --database postgres --scenario "$scenario" --duration 14s --json "$report" \
  >/dev/null 2>&1 &
bench=$!
sleep 8
# The bench's scratch databases are named trilo_test_…; their backends carry the name.
backends=$(ps -eo pid,args | awk '/postgres: .* trilo_test_/ && !/awk/ {print $1}')
ticks() {
  local total=0 pid
  for pid in $backends; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
before=$(ticks)
sleep 5
after=$(ticks)
wait "$bench"
python3 - "$report" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = json.load(open(report))["scenarios"][0]["requests_per_s"]
cpu_us = (after - before) / hz * 1e6 / 5
print(f"{rate:.0f} requests/s, PostgreSQL CPU {cpu_us / rate:.1f} µs a request")
PY
