#!/usr/bin/env bash
# PostgreSQL's CPU per request during one `trilo bench` scenario, for comparing two builds
# (README, "Batch writers on connections of their own"). `trilo bench` measures it itself
# (`database_cpu_us_per_request`: the backends serving its scratch database, over the
# measured time); this runs the scenario on PostgreSQL and prints that figure with the rate.
#
#   TRILO_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
#     scripts/postgres-cpu.sh target/release/trilo refresh-rotation
#
# Needs python3 and PostgreSQL on this machine; the build must have the `bench` feature.
set -euo pipefail
bin=${1:?usage: postgres-cpu.sh TRILO_BINARY SCENARIO}
scenario=${2:?usage: postgres-cpu.sh TRILO_BINARY SCENARIO}
report=$(mktemp)
trap 'rm -f "$report"' EXIT

"$bin" bench --database postgres --scenario "$scenario" --duration 8s --json "$report" \
  >/dev/null 2>&1
python3 - "$report" <<'PY'
import json, sys
scenario = json.load(open(sys.argv[1]))["scenarios"][0]
cpu = scenario.get("database_cpu_us_per_request")
shown = "unknown (the database runs elsewhere)" if cpu is None else f"{cpu} µs a request"
print(f"{scenario['requests_per_s']:.0f} requests/s, PostgreSQL CPU {shown}")
PY
