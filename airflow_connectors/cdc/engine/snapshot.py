"""The initial copy: every table read inside the slot's exported snapshot, piped source -> sink with COPY.

Rows are never decoded in Python: ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)`` chunks go straight into
``COPY ... FROM STDIN (FORMAT BINARY)`` (text format for the few tables whose binary form would embed type oids the
sink may not share). With ``parallel_snapshots_enabled``, large tables are split into CTID page ranges copied by
parallel workers, each importing the same snapshot, so the result is one consistent image.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.copy_pipe import pipe
from airflow_connectors.cdc.engine.interface import RunCancelled, RunReporter, TableCounters
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.sink_schema import table_ident

PAGES_PER_CHUNK = 4096  # 32 MiB of heap per parallel chunk
PROGRESS_EVERY = 5.0  # seconds between progress reports of a long copy


@dataclass(frozen=True)
class Chunk:
    plan: TablePlan
    pages: tuple[int, int] | None  # [first, last) heap pages, or None for the whole table


def plan_chunks(conn: psycopg.Connection[Any], plans: list[TablePlan], parallel: bool) -> list[Chunk]:
    """Split large ordinary tables into page ranges (largest first, so workers finish together)."""
    chunks: list[tuple[int, Chunk]] = []
    for plan in plans:
        row = conn.execute(
            "SELECT pg_relation_size(c.oid) / current_setting('block_size')::int FROM pg_class c"
            " WHERE c.oid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass",
            (plan.source_schema, plan.source_table),
        ).fetchone()
        pages = int(row[0]) if row else 0
        if not parallel or plan.relkind != "r" or pages <= PAGES_PER_CHUNK:
            chunks.append((pages, Chunk(plan, None)))
            continue
        for first in range(0, pages, PAGES_PER_CHUNK):
            last = first + PAGES_PER_CHUNK
            # The last range is open-ended: rows added to new pages before the snapshot are included too.
            chunks.append((PAGES_PER_CHUNK, Chunk(plan, (first, last if last < pages else 2**31 - 1))))
    return [chunk for _, chunk in sorted(chunks, key=lambda item: -item[0])]


def _select(chunk: Chunk) -> sql.Composed:
    plan = chunk.plan
    columns = sql.SQL(", ").join(map(sql.Identifier, plan.column_names))
    source = sql.Identifier(plan.source_schema, plan.source_table)
    if chunk.pages is None:
        return sql.SQL("SELECT {} FROM {}").format(columns, source)
    first, last = chunk.pages
    return sql.SQL("SELECT {} FROM {} WHERE ctid >= {}::tid AND ctid < {}::tid").format(
        columns, source, sql.Literal(f"({first},0)"), sql.Literal(f"({last},0)")
    )


def copy_chunk(
    source_conninfo: str,
    sink_conninfo: str,
    snapshot: str,
    chunk: Chunk,
    stop: Callable[[], bool],
    progress: Callable[[int, bool], None],
) -> int:
    """Copy one chunk inside ``snapshot`` and commit it in the sink; returns its rows. ``progress`` gets the bytes
    copied since its last call, every few seconds, so a long copy shows it is alive."""
    plan = chunk.plan
    fmt = sql.SQL("(FORMAT BINARY)" if plan.binary_safe else "(FORMAT TEXT)")
    columns = sql.SQL(", ").join(map(sql.Identifier, plan.column_names))
    reported, last_report = 0, time.monotonic()

    def check(copied: int) -> None:
        nonlocal reported, last_report
        if stop():
            raise RunCancelled()
        if time.monotonic() - last_report >= PROGRESS_EVERY:
            progress(copied - reported, False)
            reported, last_report = copied, time.monotonic()

    # The sink's COPY is its own transaction (autocommit): it commits whole when it ends, or not at all.
    with psycopg.connect(source_conninfo) as src, psycopg.connect(sink_conninfo, autocommit=True) as dst:
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        src.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        rows, copied = pipe(
            src,
            sql.SQL("COPY ({}) TO STDOUT {}").format(_select(chunk), fmt),
            dst,
            sql.SQL("COPY {} ({}) FROM STDIN {}").format(table_ident(plan), columns, fmt),
            check,
        )
    progress(copied - reported, True)
    return rows


def copy_tables(
    *,
    source_conninfo: str,
    sink_conninfo: str,
    snapshot: str,
    plans: list[TablePlan],
    parallel: bool,
    workers: int,
    reporter: RunReporter,
    should_stop: Callable[[], bool],
) -> dict[str, TableCounters]:
    """Copy the tables (already created and empty in the sink) inside ``snapshot``; per-table counters."""
    with psycopg.connect(source_conninfo) as conn:
        chunks = plan_chunks(conn, plans, parallel)
    counters = {plan.name: TableCounters() for plan in plans}
    remaining = {plan.name: sum(1 for chunk in chunks if chunk.plan.name == plan.name) for plan in plans}
    started = {plan.name: time.monotonic() for plan in plans}
    lock = threading.Lock()

    def run(chunk: Chunk) -> None:
        name = chunk.plan.name

        def progress(size: int, done: bool) -> None:
            with lock:
                table = counters[name]
                table.bytes += size
                reporter.table_progress(name, TableCounters(table.rows, table.bytes, table.inserts))
                if done:
                    return  # the table's summary line follows when its last chunk is in
                seconds = max(time.monotonic() - started[name], 1e-6)
                mib = table.bytes / 2**20
                reporter.log(f"snapshot of {name}: {mib:,.0f} MiB copied ({mib / seconds:,.1f} MiB/s)")

        rows = copy_chunk(source_conninfo, sink_conninfo, snapshot, chunk, should_stop, progress)
        with lock:
            table = counters[name]
            table.rows += rows
            table.inserts += rows
            remaining[name] -= 1
            reporter.table_progress(name, TableCounters(table.rows, table.bytes, table.inserts))
            if remaining[name] == 0:
                seconds = max(time.monotonic() - started[name], 1e-6)
                reporter.log(
                    f"snapshot of {name}: {table.rows} rows, {table.bytes} bytes in {seconds:.1f}s "
                    f"({table.rows / seconds:,.0f} rows/s)"
                )

    with ThreadPoolExecutor(max_workers=max(1, workers if parallel else 1), thread_name_prefix="cdc-snapshot") as pool:
        for future in [pool.submit(run, chunk) for chunk in chunks]:
            future.result()
    return counters
