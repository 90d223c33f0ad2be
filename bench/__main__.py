"""``make bench`` (``python -m bench [--rows N] [--full]``): our engine against native logical replication.

Every figure is measured in this run, on this machine, between two embedded PostgreSQL clusters (source and sink)
with identical settings, and reported as a ratio to its baseline; results go to ``bench/RESULTS.md`` and
``bench/results.json``. Scenarios: the initial copy of a table (baselines: ``CREATE SUBSCRIPTION`` initial sync and
a raw binary COPY pipe), one big UPDATE transaction applied, and a pgbench stream of single-row transactions (lag
left when the load stops). The engine runs in its own process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres, _bin_dir
from airflow_connectors.cdc.models import Connector

HERE = Path(__file__).resolve().parent
TABLE_DDL = "CREATE TABLE public.bench (id int PRIMARY KEY, a int NOT NULL, b text, c timestamptz)"
FILL = (
    "INSERT INTO public.bench SELECT i, 0, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text),"
    " now() FROM generate_series(1, {rows}) i"
)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def wait_until(probe: Callable[[], bool], timeout: float = 1800, every: float = 0.05) -> float:
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(every)
    return time.perf_counter() - started


class Bench:
    def __init__(self, root: Path) -> None:
        self.source = EmbeddedPostgres(root / "source").start()
        self.sink = EmbeddedPostgres(root / "sink").start()

    def close(self) -> None:
        self.source.destroy()
        self.sink.destroy()

    # -- setup --------------------------------------------------------------------------------------------------
    def fresh(self, server: EmbeddedPostgres, name: str) -> str:
        with server.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return server.create_database(name)

    def source_db(self, rows: int) -> str:
        with self.source.connect(autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active")
        dsn = self.fresh(self.source, "bench_src")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE_DDL)
            conn.execute(FILL.format(rows=rows))
            conn.execute("VACUUM ANALYZE public.bench")
            conn.execute("CREATE PUBLICATION native_pub FOR TABLE public.bench")
        return dsn

    def connector(self, sink_db: str) -> dict[str, Any]:
        def side(server: EmbeddedPostgres, database: str) -> dict[str, Any]:
            return {"host": "127.0.0.1", "port": server.port, "user": "postgres", "password": server.password,
                    "database": database, "max_pool_size": 2}

        return Connector.model_validate({
            "id": f"bench-{sink_db}",
            "source": {"postgres": {"connection": side(self.source, "bench_src"),
                                    "replication_type": {"logical_replication": {}}}},
            "sink": {"postgres": {"connection": side(self.sink, sink_db), "target_schema": "public"}},
        }).stored()

    # -- measurements --------------------------------------------------------------------------------------------
    def ours(self, sink_db: str, mode: str = "catch_up", stop_file: str | None = None) -> subprocess.Popen[str]:
        job = json.dumps({"connector": self.connector(sink_db), "mode": mode, "stop_file": stop_file})
        process = subprocess.Popen([sys.executable, "-m", "bench.engine_process"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        assert process.stdin is not None
        process.stdin.write(job)
        process.stdin.close()
        return process

    @staticmethod
    def report(process: subprocess.Popen[str]) -> dict[str, Any]:
        assert process.stdout is not None
        out = process.stdout.read()
        if process.wait() != 0:
            raise RuntimeError(f"engine process failed: {out[-2000:]}")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def native_subscribe(self, sink_db: str) -> float:
        """CREATE SUBSCRIPTION with the initial copy; seconds until every table is synchronised ('r')."""
        dsn = self.fresh(self.sink, sink_db)
        conninfo = f"host=127.0.0.1 port={self.source.port} user=postgres password={self.source.password} dbname=bench_src"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE_DDL)
            started = time.perf_counter()
            conn.execute(sql.SQL("CREATE SUBSCRIPTION native_sub CONNECTION {} PUBLICATION native_pub").format(
                sql.Literal(conninfo)))
            wait_until(lambda: conn.execute(
                "SELECT count(*) = 0 FROM pg_subscription_rel WHERE srsubstate <> 'r'").fetchone()[0])
            return time.perf_counter() - started

    def native_drop(self, sink_db: str) -> None:
        with psycopg.connect(self.sink.conninfo(sink_db), autocommit=True) as conn:
            conn.execute("DROP SUBSCRIPTION IF EXISTS native_sub")

    def copy_pipe(self) -> float:
        dsn = self.fresh(self.sink, "bench_copy")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE_DDL)
        started = time.perf_counter()
        with psycopg.connect(self.source.conninfo("bench_src")) as src, psycopg.connect(dsn) as dst:
            with src.cursor().copy("COPY public.bench TO STDOUT (FORMAT BINARY)") as out, \
                    dst.cursor().copy("COPY public.bench FROM STDIN (FORMAT BINARY)") as into:
                for chunk in out:
                    into.write(chunk)
            dst.commit()
        return time.perf_counter() - started

    def update_all(self) -> int:
        with psycopg.connect(self.source.conninfo("bench_src"), autocommit=True) as conn:
            conn.execute("UPDATE public.bench SET a = a + 1")
        return self.sum_a(self.source, "bench_src")

    def sum_a(self, server: EmbeddedPostgres, database: str) -> int:
        with psycopg.connect(server.conninfo(database)) as conn:
            return int(conn.execute("SELECT coalesce(sum(a), 0) FROM public.bench").fetchone()[0])

    def sink_reaches(self, database: str, expected: int) -> Callable[[], bool]:
        """The sink shows every change: the data, not a replication counter that is reported lazily, says so."""
        conn = psycopg.connect(self.sink.conninfo(database), autocommit=True)
        return lambda: int(conn.execute("SELECT coalesce(sum(a), 0) FROM public.bench").fetchone()[0]) == expected

    def pgbench(self, transactions: int) -> int:
        script = Path(tempfile.mkstemp(suffix=".sql")[1])
        script.write_text("\\set id random(1, :rows)\nUPDATE public.bench SET a = a + 1 WHERE id = :id;\n")
        env = {**os.environ, "PGPASSWORD": self.source.password}
        subprocess.run(
            [str(_bin_dir() / "pgbench"), "-h", "127.0.0.1", "-p", str(self.source.port), "-U", "postgres", "-n",
             "-c", "2", "-j", "2", "-t", str(transactions // 2), "-D", f"rows={self.rows}", "-f", str(script), "bench_src"],
            env=env, check=True, capture_output=True,
        )
        return self.sum_a(self.source, "bench_src")

    # -- scenarios -----------------------------------------------------------------------------------------------
    def snapshot(self, rows: int) -> dict[str, Any]:
        self.rows = rows
        self.source_db(rows)
        say(f"snapshot of {rows:,} rows: raw COPY pipe")
        copy_seconds = self.copy_pipe()
        say("snapshot: native logical replication initial sync")
        native = self.native_subscribe("bench_native")
        self.native_drop("bench_native")
        say("snapshot: our engine")
        self.fresh(self.sink, "bench_ours")
        ours = self.report(self.ours("bench_ours"))
        return {"rows": rows, "copy_pipe_s": copy_seconds, "native_s": native, "ours_s": ours["seconds"],
                "ours_rss_mb": ours["max_rss_mb"], "ratio_vs_native": ours["seconds"] / native,
                "ratio_vs_copy": ours["seconds"] / copy_seconds}

    def big_update(self, rows: int) -> dict[str, Any]:
        self.rows = rows
        self.source_db(rows)
        native_initial = self.native_subscribe("bench_native")
        self.fresh(self.sink, "bench_ours_u")
        self.report(self.ours("bench_ours_u"))  # initial snapshot; the slot now holds what follows
        say(f"one {rows:,}-row UPDATE: native apply")
        started = time.perf_counter()
        expected = self.update_all()
        native = wait_until(self.sink_reaches("bench_native", expected), every=0.02) + (time.perf_counter() - started)
        self.native_drop("bench_native")
        say("one big UPDATE: our engine (a catch-up run)")
        self.update_all()
        ours = self.report(self.ours("bench_ours_u"))
        return {"rows": rows, "native_initial_s": native_initial, "native_s": native, "ours_s": ours["seconds"],
                "ours_rss_mb": ours["max_rss_mb"], "ratio_vs_native": ours["seconds"] / native}

    def stream_lag(self, rows: int, transactions: int) -> dict[str, Any]:
        self.rows = rows
        self.source_db(rows)
        self.native_subscribe("bench_native")
        say(f"{transactions:,} single-row transactions (pgbench): native lag")
        expected = self.pgbench(transactions)
        native_lag = wait_until(self.sink_reaches("bench_native", expected), every=0.02)
        self.native_drop("bench_native")
        say("single-row transactions: our engine, continuous run")
        self.fresh(self.sink, "bench_ours_s")
        self.report(self.ours("bench_ours_s"))  # initial snapshot
        stop = Path(tempfile.mkstemp()[1])
        stop.unlink()
        process = self.ours("bench_ours_s", "continuous", str(stop))
        time.sleep(2)  # let the run connect and start streaming
        started = time.perf_counter()
        expected = self.pgbench(transactions)
        load_seconds = time.perf_counter() - started
        ours_lag = wait_until(self.sink_reaches("bench_ours_s", expected), every=0.02)
        stop.touch()
        ours = self.report(process)
        return {"transactions": transactions, "load_s": load_seconds, "native_lag_s": native_lag,
                "ours_lag_s": ours_lag, "ours_rss_mb": ours["max_rss_mb"]}


def write_results(results: dict[str, Any], command: str, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2))
    snap = results["snapshot"]
    lines = [
        "# Benchmark results",
        "",
        f"Reproduce: `{command}` (writes this file). Machine: {results['machine']}.",
        "Source and sink are two embedded PostgreSQL 18 clusters on loopback with identical settings; every baseline",
        "is measured in the same run. Ratios are ours / baseline (lower is better).",
        "",
        "| scenario | baseline | ours | ratio | goal | peak RSS (ours) |",
        "|---|---|---|---|---|---|",
    ]
    for item in snap:
        lines.append(f"| snapshot {item['rows']:,} rows | native initial sync {item['native_s']:.2f} s (raw COPY pipe "
                     f"{item['copy_pipe_s']:.2f} s) | {item['ours_s']:.2f} s | {item['ratio_vs_native']:.2f}x native, "
                     f"{item['ratio_vs_copy']:.2f}x COPY | <= 0.8x native | {item['ours_rss_mb']} MB |")
    upd = results["update"]
    lines.append(f"| one {upd['rows']:,}-row UPDATE applied | native {upd['native_s']:.2f} s | {upd['ours_s']:.2f} s "
                 f"(whole run) | {upd['ratio_vs_native']:.2f}x | <= 0.7x | {upd['ours_rss_mb']} MB |")
    lag = results["stream"]
    lines.append(f"| {lag['transactions']:,} single-row transactions (pgbench, {lag['load_s']:.1f} s of load) | native lag "
                 f"{lag['native_lag_s']:.2f} s | lag {lag['ours_lag_s']:.2f} s after the load | - | <= 2 s | "
                 f"{lag['ours_rss_mb']} MB |")
    lines += ["", "Raw numbers: `bench/results.json`.", ""]
    notes = HERE / "NOTES.md"  # what limits the figures: kept by hand, appended to every run's report
    (out / "RESULTS.md").write_text("\n".join(lines) + (notes.read_text() if notes.exists() else ""))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--transactions", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="also the 5M-row snapshot (scale curve)")
    parser.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md and results.json go")
    args = parser.parse_args()
    command = "make bench" if args.rows == 1_000_000 and not args.full else "python -m bench " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="cdc-bench-") as root:
        bench = Bench(Path(root))
        try:
            sizes = [args.rows, 5 * args.rows] if args.full else [args.rows]
            results = {
                "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
                "snapshot": [bench.snapshot(rows) for rows in sizes],
                "update": bench.big_update(args.rows),
                "stream": bench.stream_lag(args.rows, args.transactions),
            }
        finally:
            bench.close()
    write_results(results, command, args.out)
    say(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
