"""Two PostgreSQL clusters and the moves every scenario is made of: fill, subscribe, pipe, load, probe, run ours.

Source and sink are separate ``EmbeddedPostgres`` clusters with the same settings for our engine and for the
native baselines. Conditions are polled cheaply (one row by key, a replication position), never by scanning the
table, so the probe does not compete with the apply it measures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres
from airflow_connectors.cdc.engine import drop_source_objects
from airflow_connectors.cdc.engine.naming import STATE_SCHEMA, slot_name
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from airflow_connectors.cdc.engine.verify import CANONICAL_OPTIONS, row_hash

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DB = "bench_src"
TABLE_DDL = "CREATE TABLE public.bench (id int PRIMARY KEY, a int NOT NULL, b text, c timestamptz)"
# About 150 bytes a row (1M rows: ~160 MB of heap), close to the reference figures in DESIGN.md.
FILL = (
    "INSERT INTO public.bench SELECT i, 0, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text), now()"
    " FROM generate_series(1, %s) i"
)
BENCH_PLAN = TablePlan(  # public.bench as the engine plans it (for the verification baseline's row hash)
    "public",
    "bench",
    "public",
    "bench",
    columns=tuple(
        ColumnPlan(name, kind, kind, oid, not_null)
        for name, kind, oid, not_null in (
            ("id", "integer", 23, True),
            ("a", "integer", 23, True),
            ("b", "text", 25, False),
            ("c", "timestamp with time zone", 1184, False),
        )
    ),
    key=("id",),
    replica_identity="d",
    relkind="r",
    binary_safe=True,
)
PGBENCH_SCRIPT = "\\set id random(1, :rows)\nUPDATE public.bench SET a = a + 1 WHERE id = :id;\n"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def lsn_int(lsn: str | None) -> int:
    if not lsn:
        return 0
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def wait_until(probe: Callable[[], bool], timeout: float = 1800, every: float = 0.02) -> float:
    """Seconds until ``probe()`` holds (polled every ``every`` s)."""
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(every)
    return time.perf_counter() - started


@dataclass
class Follow:
    """How a replication position caught up with a target LSN after the load stopped."""

    lag_bytes: int  # target - position when the load stopped
    lag_s: float  # seconds until position >= target (or until its last move, when it stalled short of it)
    reached: bool  # False: it stalled short of the target (WAL after the last commit that carries no change)
    short_bytes: int


def follow(position: Callable[[], int], target: int, stall: float = 10.0, timeout: float = 1800) -> Follow:
    started = time.perf_counter()
    first = last = position()
    last_move = started
    while True:
        now, current = time.perf_counter(), position()
        if current != last:
            last, last_move = current, now
        if current >= target:
            return Follow(target - first, now - started, True, 0)
        if now - last_move > stall or now - started > timeout:
            return Follow(target - first, last_move - started, False, target - current)
        time.sleep(0.02)


class OursFailed(RuntimeError):
    """Our engine's run failed: the figure is reported missing, with this message."""


class EngineProcess:
    """One ``execute_run`` in a child process (``bench.engine_process``): its time, rows and peak RSS."""

    def __init__(
        self, connector: dict[str, Any], mode: str = "catch_up", stop_file: Path | None = None, verify: bool = False
    ) -> None:
        self.stop_file = stop_file
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.engine_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            cwd=ROOT,
        )
        assert self.process.stdin is not None
        job = {"connector": connector, "mode": mode, "stop_file": str(stop_file or ""), "verify": verify}
        self.process.stdin.write(json.dumps(job))
        self.process.stdin.close()

    def stop(self) -> None:
        if self.stop_file is not None:
            self.stop_file.touch()

    def alive(self) -> bool:
        return self.process.poll() is None

    def result(self, timeout: float = 1800) -> dict[str, Any]:
        assert self.process.stdout is not None
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise OursFailed(f"our run did not finish within {timeout:.0f} s") from None
        lines = self.process.stdout.read().strip().splitlines()
        report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
        if self.process.returncode != 0 or "error" in report:
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace").strip().splitlines()[-3:]
            raise OursFailed(report.get("error") or " | ".join(tail) or f"exit status {self.process.returncode}")
        return dict(report)


class Bench:
    """A source and a sink cluster of one PostgreSQL installation (``bin_dir``; None: the embedded wheel's)."""

    def __init__(self, root: Path, bin_dir: Path | None = None) -> None:
        self.source = EmbeddedPostgres(root / "source", bin_dir=bin_dir).start()
        self.sink = EmbeddedPostgres(root / "sink", bin_dir=bin_dir).start()
        self.rows = 0

    def close(self) -> None:
        self.source.destroy()
        self.sink.destroy()

    def version(self) -> int:
        with self.source.connect() as conn:
            return int(conn.info.server_version) // 10000

    def server_info(self) -> dict[str, Any]:
        with self.source.connect() as conn:
            version = conn.execute("SELECT version()").fetchone()
        return {"postgres": version[0] if version else "?", "settings": self.source.settings}

    # -- setup ---------------------------------------------------------------------------------------------------
    def fresh(self, server: EmbeddedPostgres, name: str) -> str:
        return server.create_database(name)

    def fill_source(self, rows: int) -> None:
        """A fresh source database with ``rows`` rows and the native publication."""
        self.rows = rows
        self.fresh(self.source, SOURCE_DB)
        with self.source_conn() as conn:
            conn.execute(TABLE_DDL)
            conn.execute(FILL, (rows,))
            conn.execute("VACUUM ANALYZE public.bench")
            conn.execute("CREATE PUBLICATION native_pub FOR TABLE public.bench")

    def source_conn(self) -> psycopg.Connection[Any]:
        return self.source.connect(SOURCE_DB, autocommit=True)

    def sink_conn(self, database: str) -> psycopg.Connection[Any]:
        return self.sink.connect(database, autocommit=True)

    def vacuum_source(self) -> None:
        with self.source_conn() as conn:
            conn.execute("VACUUM ANALYZE public.bench")

    def checksum(self, server: EmbeddedPostgres, database: str) -> tuple[int, int]:
        """(rows, sum of a): equal on both sides once every change is applied. Never inside a timed section."""
        with server.connect(database) as conn:
            row = conn.execute("SELECT count(*), coalesce(sum(a), 0) FROM public.bench").fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def whole_table_checksums(self, database: str) -> float:
        """Baseline of a verification: the same row hash as ours summed over the whole table in one query per side,
        one side after the other (no chunks, no parallelism). Seconds."""
        query = sql.SQL("SELECT count(*), sum({}) FROM public.bench").format(row_hash(BENCH_PLAN))
        started = time.perf_counter()
        sums = []
        for server, name in ((self.source, SOURCE_DB), (self.sink, database)):
            with psycopg.connect(server.conninfo(name), options=CANONICAL_OPTIONS) as conn:
                sums.append(conn.execute(query).fetchone())
        seconds = time.perf_counter() - started
        if sums[0] != sums[1]:
            raise RuntimeError(f"the whole-table checksums differ: {sums}")
        return seconds

    def same_as_source(self, database: str) -> bool:
        return self.checksum(self.sink, database) == self.checksum(self.source, SOURCE_DB)

    # -- baselines -----------------------------------------------------------------------------------------------
    def copy_pipe(self) -> float:
        """Raw ``COPY (FORMAT binary)`` from the source piped into the sink with psycopg: the floor for a copy."""
        dsn = self.fresh(self.sink, "bench_copy")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE_DDL)
        started = time.perf_counter()
        with self.source.connect(SOURCE_DB) as src, psycopg.connect(dsn) as dst:
            with (
                src.cursor().copy("COPY public.bench TO STDOUT (FORMAT BINARY)") as out,
                dst.cursor().copy("COPY public.bench FROM STDIN (FORMAT BINARY)") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            dst.commit()
        return time.perf_counter() - started

    def subscribe(self, sink_db: str) -> float:
        """``CREATE SUBSCRIPTION ... WITH (copy_data = true, streaming = on)``; seconds until the table's
        ``srsubstate = 'r'``. ``streaming = on`` is native's best setting for large transactions that both releases
        have (on 16+ ``parallel`` also applies them in a background worker while they run)."""
        self.fresh(self.sink, sink_db)
        source = self.source.conninfo(SOURCE_DB)
        with self.sink_conn(sink_db) as conn:
            conn.execute(TABLE_DDL)
            started = time.perf_counter()
            conn.execute(
                sql.SQL(
                    "CREATE SUBSCRIPTION native_sub CONNECTION {} PUBLICATION native_pub"
                    " WITH (copy_data = true, streaming = on)"
                ).format(sql.Literal(source))
            )
            ready = (
                "SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 'public.bench'::regclass AND srsubstate = 'r'"
            )
            wait_until(lambda: conn.execute(ready).fetchone() == (1,))
            return time.perf_counter() - started

    def unsubscribe(self, sink_db: str) -> None:
        with self.sink_conn(sink_db) as conn:
            conn.execute("DROP SUBSCRIPTION IF EXISTS native_sub")  # drops its slot on the source too

    def native_position(self, sink_db: str) -> Callable[[], int]:
        """The source LSN up to which the subscription has applied (its replication origin, live in shared memory)."""
        conn = self.sink_conn(sink_db)
        query = (
            "SELECT remote_lsn::text FROM pg_replication_origin_status WHERE external_id ="
            " (SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'native_sub')"
        )
        return lambda: lsn_int((conn.execute(query).fetchone() or (None,))[0])

    # -- our engine ----------------------------------------------------------------------------------------------
    def connector(self, sink_db: str) -> Connector:
        def side(server: EmbeddedPostgres, database: str) -> dict[str, Any]:
            return {
                "host": "127.0.0.1",
                "port": server.port,
                "user": "postgres",
                "password": server.password,
                "database": database,
            }

        return Connector.model_validate(
            {
                "id": f"bench-{sink_db}",
                "source": {
                    "postgres": {
                        "connection": side(self.source, SOURCE_DB),
                        "replication_type": {"logical_replication": {}},
                    }
                },
                "sink": {"postgres": {"connection": side(self.sink, sink_db), "target_schema": "public"}},
            }
        )

    def ours(
        self, sink_db: str, mode: str = "catch_up", stop_file: Path | None = None, verify: bool = False
    ) -> EngineProcess:
        return EngineProcess(self.connector(sink_db).stored(), mode, stop_file, verify)

    def forget_ours(self, sink_db: str) -> None:
        """Drop our slot and publication: an abandoned slot would hold WAL through the next scenarios."""
        drop_source_objects(self.connector(sink_db))

    def ours_streaming(self, connector_id: str) -> Callable[[], bool]:
        """Our continuous run has its slot open (START_REPLICATION sent): changes from now on reach it live."""
        name = slot_name(connector_id)
        conn = self.source_conn()
        query = "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = %s"
        return lambda: bool(conn.execute(query, (name,)).fetchone()[0])  # type: ignore[index]

    def ours_position(self, sink_db: str, connector_id: str) -> Callable[[], int]:
        """Our sink checkpoint: the source LSN committed in the sink together with the data it covers."""
        conn = self.sink_conn(sink_db)
        query = sql.SQL("SELECT lsn::text FROM {}.checkpoints WHERE connector_id = %s").format(
            sql.Identifier(STATE_SCHEMA)
        )
        return lambda: lsn_int((conn.execute(query, (connector_id,)).fetchone() or (None,))[0])

    # -- load ----------------------------------------------------------------------------------------------------
    def wal_insert_lsn(self) -> int:
        with self.source_conn() as conn:
            return lsn_int(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])  # type: ignore[index]

    def update_all(self) -> dict[str, Any]:
        """One transaction updating every row; returns when it committed (``started_at`` and ``committed_at``:
        perf_counter; ``a``: the value every row has now)."""
        with self.source_conn() as conn:
            before = self.wal_insert_lsn()
            started = time.perf_counter()
            conn.execute("UPDATE public.bench SET a = a + 1")
            committed_at = time.perf_counter()
            a = conn.execute("SELECT a FROM public.bench WHERE id = %s", (self.rows,)).fetchone()
        return {
            "update_s": committed_at - started,
            "wal_bytes": self.wal_insert_lsn() - before,
            "started_at": started,
            "committed_at": committed_at,
            "a": a[0] if a else None,
        }

    def row_a_is(self, database: str, expected: int) -> Callable[[], bool]:
        """One row by key: enough, since a source transaction is applied in one sink transaction (both engines)."""
        conn = self.sink_conn(database)
        return lambda: conn.execute("SELECT a FROM public.bench WHERE id = %s", (self.rows,)).fetchone() == (expected,)

    def pgbench(self, transactions: int) -> dict[str, Any]:
        """``transactions`` single-row UPDATE transactions over 2 connections (``-c 2 -j 2``, fixed count)."""
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(PGBENCH_SCRIPT)
        command = [
            str(self.source.bin_dir / "pgbench"),
            *("-h", "127.0.0.1", "-p", str(self.source.port), "-U", "postgres", "-n", "-c", "2", "-j", "2"),
            *("-t", str(transactions // 2), "-D", f"rows={self.rows}", "-f", script.name, SOURCE_DB),
        ]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command, env={**os.environ, "PGPASSWORD": self.source.password}, capture_output=True, text=True
            )
        finally:
            os.unlink(script.name)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed: {done.stderr.strip()[-500:]}")
        tps = re.search(r"tps = ([\d.]+)", done.stdout)
        return {"transactions": transactions, "load_s": seconds, "tps": float(tps.group(1)) if tps else None}
