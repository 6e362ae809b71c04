#!/usr/bin/env bash
# The SQLite committer thread's CPU per write, for comparing two builds (README, "The
# committer's own time"). Runs one `trilo bench` scenario for 14 s and, over 6 s in its
# middle, divides the committer thread's CPU and run-queue wait (/proc/PID/task/TID/
# schedstat) and the whole server's CPU (/proc/PID/stat) by the writes the committer's
# `trilo_store_commit_group_size` histogram counted on /metrics.
#
#   scripts/committer-cpu.sh target/release/trilo refresh-rotation
#
# Needs Linux, pgrep, ss and curl; the build must have the `bench` feature.
set -euo pipefail
bin=${1:?usage: committer-cpu.sh TRILO_BINARY SCENARIO}
scenario=${2:?usage: committer-cpu.sh TRILO_BINARY SCENARIO}
report=$(mktemp)
trap 'rm -f "$report"' EXIT

"$bin" bench --database sqlite --scenario "$scenario" --duration 14s --json "$report" \
  >/dev/null 2>&1 &
bench=$!
pid=
for _ in $(seq 1 120); do
  pid=$(pgrep -f "bench-server" | head -1 || true)
  [ -n "$pid" ] && break
  sleep 1
done
[ -n "$pid" ] || { echo "the bench server did not start" >&2; exit 1; }
sleep 7
port=$(ss -ltnp | grep "pid=$pid," | head -1 | awk '{print $4}' | sed 's/.*://')
tid=$(grep -l trilo-sqlite-co /proc/"$pid"/task/*/comm | cut -d/ -f5)
writes() { curl -s "127.0.0.1:$port/metrics" | awk '/^trilo_store_commit_group_size_sum/{print $2}'; }
ticks() { awk '{print $14 + $15}' /proc/"$pid"/stat; }

sched1=$(cat /proc/"$pid"/task/"$tid"/schedstat) writes1=$(writes) ticks1=$(ticks)
sleep 6
sched2=$(cat /proc/"$pid"/task/"$tid"/schedstat) writes2=$(writes) ticks2=$(ticks)
wait "$bench"

read -r run1 wait1 _ <<<"$sched1"
read -r run2 wait2 _ <<<"$sched2"
hz=$(getconf CLK_TCK)
awk -v w1="$writes1" -v w2="$writes2" -v r1="$run1" -v r2="$run2" -v q1="$wait1" \
  -v q2="$wait2" -v t1="$ticks1" -v t2="$ticks2" -v hz="$hz" 'BEGIN {
  w = w2 - w1
  printf "writes/s %.0f; committer CPU %.1f µs and run-queue wait %.1f µs a write; server CPU %.0f µs a write\n",
    w / 6, (r2 - r1) / 1e3 / w, (q2 - q1) / 1e3 / w, (t2 - t1) * 1e6 / hz / w
}'
