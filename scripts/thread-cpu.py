#!/usr/bin/env python3
"""Each thread's CPU and run-queue wait per request, in the bench server and in the load
generator (README, "Where a refresh waits").

Runs one `trilo bench` scenario for 14 s on SQLite and, over 6 s in its middle, reads
every thread's /proc/PID/task/TID/schedstat (time on a CPU, time waiting for one) in both
processes; threads of one name are summed and divided by the requests of that window
(the report's rate times the window). Needs Linux and pgrep; the build must have the
`bench` feature.

    scripts/thread-cpu.py target/release/trilo refresh-rotation
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

WINDOW_S = 6


def threads(pid):
    """{tid: (name, ns on a CPU, ns waiting for one)} of process `pid`."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ran, waited, _ = f.read().split()
        except OSError:
            continue  # the thread ended meanwhile
        found[tid] = (name, int(ran), int(waited))
    return found


def by_name(before, after):
    """Per thread name (numbers stripped), the ns ran and waited between two samples."""
    totals = {}
    for tid, (name, ran, waited) in after.items():
        if tid not in before:
            continue
        key = re.sub(r"[-:]?\d+$", "", name)
        r, w = totals.get(key, (0, 0))
        totals[key] = (r + ran - before[tid][1], w + waited - before[tid][2])
    return totals


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: thread-cpu.py TRILO_BINARY SCENARIO")
    binary, scenario = sys.argv[1], sys.argv[2]
    report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    bench = subprocess.Popen(
        [binary, "bench", "--database", "sqlite", "--scenario", scenario,
         "--duration", "14s", "--json", report],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    for _ in range(120):
        found = subprocess.run(["pgrep", "-f", "bench-server"], capture_output=True,
                               text=True).stdout.split()
        if found:
            server = found[0]
            break
        time.sleep(1)
    if server is None:
        sys.exit("the bench server did not start")
    time.sleep(7)
    server_before, client_before = threads(server), threads(bench.pid)
    time.sleep(WINDOW_S)
    server_after, client_after = threads(server), threads(bench.pid)
    bench.wait()
    with open(report) as f:
        scenarios = json.load(f)["scenarios"]
    rate = next(s["requests_per_s"] for s in scenarios if s["name"] == scenario)
    os.unlink(report)
    requests = rate * WINDOW_S
    print(f"{scenario}: {rate:.0f}/s")
    for side, before, after in (("server", server_before, server_after),
                                ("client", client_before, client_after)):
        total = 0
        for name, (ran, waited) in sorted(by_name(before, after).items(),
                                          key=lambda item: -item[1][0]):
            if ran == 0:
                continue
            total += ran
            print(f"  {side} {name:18s} CPU {ran / 1e3 / requests:6.1f} µs, waiting for a CPU "
                  f"{waited / 1e3 / requests:6.1f} µs a request "
                  f"({ran / 1e9 / WINDOW_S:.0%} of a core)")
        print(f"  {side} CPU per request {total / 1e3 / requests:.1f} µs")


if __name__ == "__main__":
    main()
