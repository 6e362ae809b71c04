#!/usr/bin/env bash
# Heap allocations per request in the bench server during one `trilo bench` scenario (SQLite),
# for comparing two builds where their CPU time is too noisy to (README, "One envelope, and
# the gateway before the router"). Counts are exact: uprobes on mimalloc's entry points and
# on the sample Jira's `user_json`, which runs once per `gateway` and per `direct` request,
# counted by `perf stat` over 3 s of the run.
#
#   scripts/allocations.sh target/release/trilo gateway
#
# Needs Linux, root, perf and readelf; the build must have the `bench` feature and its
# symbols (a release build keeps them). The uprobes slow each request down about a
# hundredfold, so the 500 ms caches miss more often per request than at full speed: compare
# builds with each other, not with a run's CPU time.
set -euo pipefail
bin=$(realpath "${1:?usage: allocations.sh TRILO_BINARY gateway|direct}")
scenario=${2:?usage: allocations.sh TRILO_BINARY gateway|direct}
group="trilo_alloc_$$"
tracing=/sys/kernel/tracing
[ -d "$tracing/events" ] || tracing=/sys/kernel/debug/tracing
report=$(mktemp)
counts=$(mktemp)
symbols=$(mktemp)
nm "$bin" >"$symbols"

# A uprobe names a file offset: the symbol's address less its executable segment's.
read -r segment_offset segment_address < <(readelf -lW "$bin" | awk '$1 == "LOAD" && /R E/ {print $2, $3}')
offset_of() {
  printf '0x%x' $((0x$1 - segment_address + segment_offset))
}
probes=(mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned user_json)
for probe in "${probes[@]}"; do
  if [ "$probe" = user_json ]; then
    address=$(awk '/trilo_sample_products8upstream4jira9user_json/ {print $1; exit}' "$symbols")
  else
    address=$(awk -v name="$probe" '$3 == name {print $1; exit}' "$symbols")
  fi
  echo "p:$group/$probe $bin:$(offset_of "$address")" >>"$tracing/uprobe_events"
done
cleanup() {
  for probe in "${probes[@]}"; do
    echo "-:$group/$probe" >>"$tracing/uprobe_events" 2>/dev/null || true
  done
  rm -f "$report" "$counts" "$symbols"
}
trap cleanup EXIT

"$bin" bench --database sqlite --scenario "$scenario" --duration 20s --json "$report" \
  >/dev/null 2>&1 &
bench=$!
sleep 9
server=$(pgrep -n -f bench-server)
events=$(printf "$group:%s," "${probes[@]}")
perf stat -x, -e "${events%,}" -p "$server" -- sleep 3 2>"$counts"
wait "$bench"
python3 - "$counts" <<'PY'
import sys
counts = {}
for line in open(sys.argv[1]):
    fields = line.strip().split(",")
    if len(fields) > 2 and ":" in fields[2]:
        counts[fields[2].split(":")[1]] = int(fields[0])
requests = counts["user_json"]
allocations = sum(n for name, n in counts.items() if name != "user_json")
print(f"{requests} requests, {allocations / requests:.1f} allocations per request "
      f"(malloc {counts['mi_malloc_aligned'] / requests:.1f}, "
      f"zalloc {counts['mi_zalloc_aligned'] / requests:.1f}, "
      f"realloc {counts['mi_realloc_aligned'] / requests:.1f})")
PY
