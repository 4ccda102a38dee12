"""How throughput grows with processes: the inquiry workload (bench.linkage) with N API and N
job-worker processes, and the screening workload (bench.credit) with N API processes, for each
N asked, on PostgreSQL. Each run is the unchanged benchmark in a child process (a fresh scratch
database each time); this prints their tables and a summary of the two throughput figures.

    .venv/bin/python -m bench.scale --processes 1 2 4

The figures only mean something relative to the machine's cores (printed): on 2 cores, 4
processes measure contention, not capacity.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(module: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{module} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    print(done.stdout, flush=True)
    return done.stdout


def figure(table: str, row: str) -> str:
    for line in table.splitlines():
        if line.startswith(f"| {row}"):
            return line.split("|")[2].strip()
    return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--bulk-inquiries", type=int, default=10)
    parser.add_argument("--debtors", type=int, default=10)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rows = []
    for n in args.processes:
        linkage = run("bench.linkage", "--backend", "postgresql", "--inquiries", "3",
                      "--bulk-inquiries", str(args.bulk_inquiries), "--debtors",
                      str(args.debtors), "--events", "5", "--api-workers", str(n),
                      "--job-workers", str(n))
        credit = run("bench.credit", "--backend", "postgresql", "--entries",
                     str(args.entries), "--seconds", str(args.seconds), "--workers", str(n))
        tasks = re.match(r"[\d,]+", figure(linkage, "unit tasks end to end"))
        checks = figure(credit, "exact: checks/s, batches of 1,000")
        rows.append((n, tasks.group(0) if tasks else "?", checks))
    print(f"\n| processes ({os.cpu_count()} cores) | unit tasks/s (inquiries) "
          f"| screening checks/s (batches of 1,000) |\n|---|---|---|")
    for n, tasks_per_s, checks in rows:
        print(f"| {n} | {tasks_per_s} | {checks} |")


if __name__ == "__main__":
    main()
