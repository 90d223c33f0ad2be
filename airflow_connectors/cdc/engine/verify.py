"""Verification: each table's source and sink compared at one consistent point, computed in SQL on both sides.

Why the comparison is exact even on a busy source: a verifying catch-up run first creates a temporary slot whose
exported snapshot is the source at its consistent point L (:func:`open_consistent_point`), then writes its fence.
The stream applies every transaction that committed before L and stops at the first one that committed at or after
it (``StreamOptions.stop_before``), so the sink's checkpoint is exactly L; nothing else writes the connector's sink
tables meanwhile (one active run per connector). Then the source is read inside that snapshot, the sink as it is.

What is compared, per table: the row count and the sum of a 64-bit md5 prefix of each row's canonical text (the
replicated columns in source order, each cast to text, as one ``ROW(...)::text``), with the same session settings
on both sides (time zone, date and interval styles, float digits, bytea output), so a type the sink stores
differently (enum -> text, domain -> its base type, composite -> text) compares equal. A sum, not a xor: duplicate
rows of a keyless table count.

Cost: tables are chunked by ranges of the first key column when its order is the same on both sides (a
non-collatable base type: integers, numerics, uuids, dates and times), one index range scan per chunk and side;
otherwise rows are bucketed by a hash of the key (of the row, keyless) in one pass per side. Chunks run in parallel
threads with their own connections and return only aggregates (bounded memory). Only a differing chunk is read row
by row (keys and row hashes of about ``chunk_rows`` rows) to name a sample of differing keys. Chunks only localise:
every row falls in a chunk on both sides (ranges cover every value, a row hashes to one bucket), so a poorly chosen
boundary can cost time or report a difference, never hide one.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.interface import RunCancelled, StopCheck
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.slot import create_slot, replication_connection
from airflow_connectors.cdc.verification import SAMPLE_KEYS, DifferingKey, Issue, TableVerification, Verification

# Text forms that do not depend on either server's defaults.
CANONICAL_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex"
)
CHUNK_ROWS = 50_000
_SAMPLE_PER_CHUNK = 100  # sampled keys per wanted chunk when choosing range boundaries

Side = Literal["source", "sink"]
SIDES: tuple[Side, Side] = ("source", "sink")
T = TypeVar("T")


@dataclass
class ConsistentPoint:
    """A temporary slot's exported snapshot: the source as of ``lsn``, alive until :meth:`close`."""

    lsn: str
    snapshot: str
    connection: psycopg.Connection[Any]

    def close(self) -> None:
        self.connection.close()  # the temporary slot goes with it


def open_consistent_point(source_conninfo: str, slot: str) -> ConsistentPoint:
    conn = replication_connection(source_conninfo)
    try:
        lsn, snapshot = create_slot(conn, f"{slot[:40]}_vf_{uuid.uuid4().hex[:8]}", temporary=True)
    except BaseException:
        conn.close()
        raise
    return ConsistentPoint(lsn, snapshot, conn)


# -- SQL expressions --------------------------------------------------------------------------------------------


def _texts(columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(name)) for name in columns)


def row_hash(plan: TablePlan) -> sql.Composable:
    """64 bits of the md5 of the row's canonical text, as a bigint (summed per chunk)."""
    row = sql.SQL("ROW({})::text").format(_texts(plan.column_names))
    return sql.SQL("('x' || left(md5({}), 16))::bit(64)::bigint").format(row)


def _bucket(plan: TablePlan, buckets: int) -> sql.Composable:
    if plan.key:
        key = sql.SQL("ROW({})::text").format(_texts(plan.key))
        return sql.SQL("((('x' || left(md5({}), 8))::bit(32)::int & 2147483647) % {})").format(
            key, sql.Literal(buckets)
        )
    return sql.SQL("((({} % {}) + {}) % {})").format(
        row_hash(plan), sql.Literal(buckets), sql.Literal(buckets), sql.Literal(buckets)
    )


@dataclass(frozen=True)
class Chunk:
    """Rows of one table: a range of its first key column (``lower`` <= k < ``upper``), or one hash bucket."""

    plan: TablePlan
    lower: str | None = None
    upper: str | None = None
    bucket: int | None = None
    buckets: int = 1

    def where(self) -> sql.Composable:
        if self.bucket is not None:
            return sql.SQL("{} = {}").format(_bucket(self.plan, self.buckets), sql.Literal(self.bucket))
        if self.lower is None and self.upper is None:
            return sql.SQL("true")
        column = self.plan.columns[self.plan.key_positions[0]]
        key, cast = sql.Identifier(column.name), sql.SQL(column.sink_type)
        parts: list[sql.Composable] = []
        if self.lower is not None:
            parts.append(sql.SQL("{} >= {}::{}").format(key, sql.Literal(self.lower), cast))
        if self.upper is not None:
            parts.append(sql.SQL("{} < {}::{}").format(key, sql.Literal(self.upper), cast))
        return sql.SQL(" AND ").join(parts)


def _table(plan: TablePlan, side: Side) -> sql.Identifier:
    if side == "source":
        return sql.Identifier(plan.source_schema, plan.source_table)
    return sql.Identifier(plan.sink_schema, plan.sink_table)


# -- connections ------------------------------------------------------------------------------------------------


class _Connections:
    """One source connection (inside the snapshot) and one sink connection per worker thread."""

    def __init__(self, source_conninfo: str, sink_conninfo: str, snapshot: str) -> None:
        self.conninfo: dict[Side, str] = {"source": source_conninfo, "sink": sink_conninfo}
        self.snapshot = snapshot
        self.local = threading.local()
        self.opened: list[psycopg.Connection[Any]] = []
        self.lock = threading.Lock()

    def get(self, side: Side) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self.local, side, None)
        if conn is None:
            conn = psycopg.connect(self.conninfo[side], options=CANONICAL_OPTIONS)
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if side == "source":
                conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
            setattr(self.local, side, conn)
            with self.lock:
                self.opened.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.opened:
            conn.close()


# -- the comparison ---------------------------------------------------------------------------------------------


@dataclass
class _TableWork:
    plan: TablePlan
    chunks: list[Chunk] = field(default_factory=list)
    reason: str | None = None  # not comparable row by row (no sink table, a missing column)
    sums: dict[Side, list[tuple[int, str]]] = field(default_factory=dict)  # per chunk: (rows, checksum)


def _sink_problem(conns: _Connections, plan: TablePlan) -> str | None:
    rows = (
        conns.get("sink")
        .execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s))"
            " AND attnum > 0 AND NOT attisdropped",
            (plan.sink_schema, plan.sink_table),
        )
        .fetchall()
    )
    if not rows:
        return f"the sink table {plan.sink_schema}.{plan.sink_table} does not exist"
    missing = [name for name in plan.column_names if name not in {row[0] for row in rows}]
    return f"the sink table has no column {missing[0]!r}" if missing else None


def _plan_chunks(conns: _Connections, plan: TablePlan, chunk_rows: int) -> _TableWork:
    work = _TableWork(plan, reason=_sink_problem(conns, plan))
    if work.reason is not None:
        return work
    source = conns.get("source")
    row = source.execute(  # a partitioned root has no rows of its own: count its partitions'
        "WITH t AS (SELECT (quote_ident(%s) || '.' || quote_ident(%s))::regclass AS oid)"
        " SELECT sum(greatest(c.reltuples, pg_relation_size(c.oid) / 100))::bigint FROM pg_class c, t"
        " WHERE c.oid = t.oid OR c.oid IN (SELECT relid FROM pg_partition_tree(t.oid))",
        (plan.source_schema, plan.source_table),
    ).fetchone()
    estimate = int(row[0]) if row and row[0] is not None else 0
    wanted = max(1, math.ceil(estimate / chunk_rows))
    if wanted == 1:
        work.chunks = [Chunk(plan)]
    elif plan.key and _same_order_on_both_sides(source, plan):
        work.chunks = _range_chunks(source, plan, wanted, estimate)
    if len(work.chunks) <= wanted // 2:  # the block sample missed (a table of few pages): hash buckets instead
        work.chunks = [Chunk(plan, bucket=number, buckets=wanted) for number in range(wanted)]
    return work


def _same_order_on_both_sides(source: psycopg.Connection[Any], plan: TablePlan) -> bool:
    """A non-collatable base type (or a domain over one) sorts the same on any server: ranges select alike."""
    row = source.execute(
        "SELECT bt.typtype = 'b' AND bt.typcollation = 0 AND bt.typcategory <> 'A'"
        " FROM pg_type t JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END"
        " WHERE t.oid = %s",
        (plan.columns[plan.key_positions[0]].type_oid,),
    ).fetchone()
    return bool(row and row[0])


def _range_chunks(source: psycopg.Connection[Any], plan: TablePlan, wanted: int, estimate: int) -> list[Chunk]:
    """Boundaries at quantiles of a block sample of the first key column; the first and last ranges are open."""
    key = sql.Identifier(plan.columns[plan.key_positions[0]].name)
    percent = min(100.0, 100.0 * wanted * _SAMPLE_PER_CHUNK / max(estimate, 1))
    query = sql.SQL("SELECT s.k::text FROM (SELECT DISTINCT {} AS k FROM {} TABLESAMPLE SYSTEM ({})) s ORDER BY s.k")
    sample = [row[0] for row in source.execute(query.format(key, _table(plan, "source"), sql.Literal(percent)))]
    bounds = list(dict.fromkeys(sample[len(sample) * i // wanted] for i in range(1, wanted))) if sample else []
    edges: list[str | None] = [None, *bounds, None]
    return [Chunk(plan, lower=edges[i], upper=edges[i + 1]) for i in range(len(edges) - 1)]


def _sums(conns: _Connections, work: _TableWork, side: Side, indices: tuple[int, ...]) -> list[tuple[int, str]]:
    """(rows, checksum) of chunks ``indices`` on one side: one query for a key range, one pass for all buckets."""
    plan, chunks = work.plan, work.chunks
    conn, table, digest = conns.get(side), _table(plan, side), row_hash(plan)
    if chunks[0].bucket is None:
        query = sql.SQL("SELECT count(*), coalesce(sum({}), 0)::text FROM {} WHERE {}")
        results = []
        for index in indices:
            row = conn.execute(query.format(digest, table, chunks[index].where())).fetchone()
            assert row is not None
            results.append((int(row[0]), str(row[1])))
        return results
    found = {
        int(bucket): (int(rows), str(total))
        for bucket, rows, total in conn.execute(
            sql.SQL("SELECT {} AS b, count(*), sum({})::text FROM {} GROUP BY 1").format(
                _bucket(plan, chunks[0].buckets), digest, table
            )
        )
    }
    return [found.get(chunks[index].bucket or 0, (0, "0")) for index in indices]


def _jobs(work: _TableWork) -> list[tuple[_TableWork, Side, tuple[int, ...]]]:
    """Each key range on each side is a job of its own; buckets are summed in one pass per side."""
    if work.chunks[0].bucket is not None:
        return [(work, side, tuple(range(len(work.chunks)))) for side in SIDES]
    return [(work, side, (index,)) for index in range(len(work.chunks)) for side in SIDES]


def _rows(conns: _Connections, chunk: Chunk, side: Side) -> list[tuple[tuple[str | None, ...], int]]:
    """(key values as text, row hash) of one chunk's rows; keyless tables are keyed by their row hash."""
    plan = chunk.plan
    key = sql.SQL("ARRAY[{}]").format(_texts(plan.key)) if plan.key else sql.SQL("ARRAY[]::text[]")
    query = sql.SQL("SELECT {}, {} FROM {} WHERE {}").format(key, row_hash(plan), _table(plan, side), chunk.where())
    return [(tuple(values), int(digest)) for values, digest in conns.get(side).execute(query)]


def _hex(digest: int) -> tuple[str]:
    return (f"{digest & 0xFFFFFFFFFFFFFFFF:016x}",)


def _differences(
    source: list[tuple[tuple[str | None, ...], int]], sink: list[tuple[tuple[str | None, ...], int]], keyed: bool
) -> list[tuple[tuple[str | None, ...], Issue]]:
    """Keys whose rows differ; keyless rows are compared as a multiset of row hashes."""
    if not keyed:
        left, right = Counter(digest for _, digest in source), Counter(digest for _, digest in sink)
        lost: list[tuple[tuple[str | None, ...], Issue]] = [(_hex(d), "missing_in_sink") for d in left - right]
        return lost + [(_hex(d), "extra_in_sink") for d in right - left]
    before, after = dict(source), dict(sink)
    found: list[tuple[tuple[str | None, ...], Issue]] = [(k, "missing_in_sink") for k in before if k not in after]
    found += [(k, "extra_in_sink") for k in after if k not in before]
    return found + [(k, "different") for k in before if k in after and before[k] != after[k]]


def _sample(conns: _Connections, work: _TableWork, differing: list[Chunk]) -> list[DifferingKey]:
    plan, sample = work.plan, []
    names = plan.key or ("row_hash",)
    for chunk in differing:
        found = _differences(_rows(conns, chunk, "source"), _rows(conns, chunk, "sink"), bool(plan.key))
        sample += [DifferingKey(key=dict(zip(names, key, strict=True)), issue=issue) for key, issue in found]
        if len(sample) >= SAMPLE_KEYS:
            break
    return sample[:SAMPLE_KEYS]


def _report(conns: _Connections, work: _TableWork) -> TableVerification:
    plan = work.plan
    sink_table = f"{plan.sink_schema}.{plan.sink_table}"
    if work.reason is not None:
        return TableVerification(status="differing", sink_table=sink_table, reason=work.reason)
    source, sink = work.sums["source"], work.sums["sink"]
    differing = [chunk for chunk, a, b in zip(work.chunks, source, sink, strict=True) if a != b]
    return TableVerification(
        status="differing" if differing else "equal",
        sink_table=sink_table,
        source_rows=sum(rows for rows, _ in source),
        sink_rows=sum(rows for rows, _ in sink),
        source_checksum=str(sum(int(total) for _, total in source)),
        sink_checksum=str(sum(int(total) for _, total in sink)),
        chunks=len(work.chunks),
        differing_chunks=len(differing),
        differing_keys=_sample(conns, work, differing) if differing else [],
    )


def verify_tables(
    *,
    source_conninfo: str,
    sink_conninfo: str,
    point: ConsistentPoint,
    plans: Iterable[TablePlan],
    workers: int,
    should_stop: StopCheck,
    chunk_rows: int = CHUNK_ROWS,
) -> Verification:
    """Compare every plan's source table (in ``point``'s snapshot) with its sink table (see the module docstring).
    The caller guarantees the sink is at ``point.lsn``."""
    started = time.monotonic()
    conns = _Connections(source_conninfo, sink_conninfo, point.snapshot)
    # One pool for every phase: its threads keep their connections (and the imported snapshot) throughout.
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cdc-verify")

    def parallel(function: Callable[..., T], *arguments: Iterable[Any]) -> list[T]:
        def call(*args: Any) -> T:
            if should_stop():
                raise RunCancelled()
            return function(conns, *args)

        return list(pool.map(call, *arguments))

    plans = list(plans)
    try:
        works = parallel(_plan_chunks, plans, [chunk_rows] * len(plans))
        jobs = [job for work in works if work.reason is None for job in _jobs(work)]
        results = parallel(_sums, *zip(*jobs, strict=True)) if jobs else []
        for (work, side, indices), sums in zip(jobs, results, strict=True):
            found = work.sums.setdefault(side, [(0, "0")] * len(work.chunks))
            for index, value in zip(indices, sums, strict=True):
                found[index] = value
        reports = parallel(_report, works)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        conns.close()
    tables = {work.plan.name: report for work, report in zip(works, reports, strict=True)}
    return Verification(
        status="equal" if all(report.status == "equal" for report in tables.values()) else "differing",
        lsn=point.lsn,
        seconds=round(time.monotonic() - started, 3),
        tables=tables,
    )


def failure_message(verification: Verification, connector_id: str) -> str:
    """The run's error when tables differ: which, how (a few keys), and the remedy (resync those tables)."""
    differing = verification.differing()
    parts = []
    for name in differing[:3]:
        table = verification.tables[name]
        if table.reason is not None:
            parts.append(f"{name} -> {table.sink_table}: {table.reason}")
            continue
        keys = ", ".join(
            f"{' '.join(f'{column}={value}' for column, value in key.key.items())} {key.issue.replace('_', ' ')}"
            for key in table.differing_keys[:3]
        )
        parts.append(
            f"{name} -> {table.sink_table}: {table.source_rows} rows in the source, {table.sink_rows} in the sink, "
            f"{table.differing_chunks} of {table.chunks} chunks differ" + (f" (e.g. {keys})" if keys else "")
        )
    more = f"; and {len(differing) - 3} more tables" if len(differing) > 3 else ""
    resync = ", ".join(f'"{name}"' for name in differing)
    return (
        f"verification at {verification.lsn}: the sink differs from the source: {'; '.join(parts)}{more}. Remedy: "
        f'resync them (POST /api/v1/connectors/{connector_id}/runs {{"resync": [{resync}]}}) and verify again'
    )
