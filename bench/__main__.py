"""``make bench`` = ``python -m bench [--rows N] [--transactions N] [--repeat N] [--full] [--out DIR]``.

One run on one machine: starts a source and a sink cluster, measures the baselines and our engine scenario by
scenario, and writes ``RESULTS.md`` and ``results.json`` (default: into ``bench/``). ``--full`` adds the 5x-row
snapshot for the scale curve. Default sizes take a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import report, scenarios
from bench.harness import Bench, say

DEFAULT_ROWS, DEFAULT_TRANSACTIONS, DEFAULT_REPEAT = 1_000_000, 100_000, 3


def machine(bench: Bench) -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info = bench.server_info()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        **info,
    }


def commit() -> str:
    """The code measured: HEAD, and whether the engine had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=report.NOTES.parent.parent
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "airflow_connectors/cdc/engine")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted engine changes" if dirty else "")


def command_line(args: argparse.Namespace) -> str:
    """The command that measures the same thing again (``--load-note`` and the default ``--out`` left out)."""
    options = [
        *(["--rows", str(args.rows)] if args.rows != DEFAULT_ROWS else []),
        *(["--transactions", str(args.transactions)] if args.transactions != DEFAULT_TRANSACTIONS else []),
        *(["--repeat", str(args.repeat)] if args.repeat != DEFAULT_REPEAT else []),
        *(["--full"] if args.full else []),
        *(["--out", str(args.out)] if args.out != report.NOTES.parent else []),
    ]
    return "make bench" if not options else "python -m bench " + shlex.join(options)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="table size of every scenario")
    parser.add_argument("--transactions", type=int, default=DEFAULT_TRANSACTIONS, help="pgbench transactions")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="snapshot rounds (median reported)")
    parser.add_argument("--full", action="store_true", help="also a snapshot of 5x --rows (scale curve)")
    parser.add_argument("--out", type=Path, default=report.NOTES.parent, help="where RESULTS.md and results.json go")
    parser.add_argument("--load-note", default="", help="what else ran on the machine (goes into RESULTS.md)")
    args = parser.parse_args()
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load: dict[str, Any] = {"start": os.getloadavg()[0], "scenarios": {}}

    def measured(name: str, result: dict[str, Any]) -> dict[str, Any]:
        load["scenarios"][name] = round(os.getloadavg()[0], 2)
        return result

    with tempfile.TemporaryDirectory(prefix="cdc-bench-") as root:
        bench = Bench(Path(root))
        try:
            results: dict[str, Any] = {"machine": machine(bench)}
            sizes = [args.rows, 5 * args.rows] if args.full else [args.rows]
            results["snapshot"] = [
                measured(f"snapshot {rows}", scenarios.snapshot(bench, rows, args.repeat)) for rows in sizes
            ]
            results["update"] = measured("update", scenarios.big_update(bench, args.rows))
            results["stream"] = measured("stream", scenarios.stream_lag(bench, args.rows, args.transactions))
            results["verify"] = measured("verify", scenarios.verify(bench, args.rows))
        finally:
            bench.close()
    load["end"] = os.getloadavg()[0]
    results.update(
        command=command_line(args),
        commit=commit(),
        started_at=started_at,
        duration_s=time.perf_counter() - started,
        load=load,
        load_note=args.load_note,
    )
    report.write(results, args.out)
    say(f"results written to {args.out / 'RESULTS.md'}")
    print((args.out / "RESULTS.md").read_text().split("## Details")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
