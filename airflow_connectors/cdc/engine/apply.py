"""Apply decoded changes to the sink in batches: COPY into a staging table, then one statement per kind per table.

Per batch and table only the last change of each key is applied (the final state is what matters, and the source
transaction order is kept for every key). UPDATEs whose TOASTed columns arrive ``UNCHANGED`` keep the value the
sink has, or the value an earlier change of the same batch gave, so no value is ever replaced by NULL and REPLICA
IDENTITY FULL is not needed. Tables without a key (REPLICA IDENTITY FULL) are applied change by change, matching
one row on its whole old value. Nothing here commits: the stream commits a batch together with its checkpoint.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.interface import TableCounters
from airflow_connectors.cdc.engine.pgoutput import UNCHANGED, Row, Value
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.sink_schema import table_ident
from airflow_connectors.cdc.engine.sink_writer import Job

_SPECIAL = re.compile(rb"[\\\t\n\r]")
_SPECIAL_NOT_TAB = re.compile(rb"[\\\n\r]")
_ESCAPES = {ord("\\"): b"\\\\", ord("\t"): b"\\t", ord("\n"): b"\\n", ord("\r"): b"\\r"}


def _copy_field(value: Value) -> bytes:
    if value is None or value is UNCHANGED:
        return b"\\N"
    assert isinstance(value, bytes)
    if _SPECIAL.search(value):
        return b"".join(_ESCAPES.get(byte, bytes((byte,))) for byte in value)
    return value


def _now(job: Job) -> None:
    job()


_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_BINARY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_FLAG = {True: b"\x00\x00\x00\x01\x01", False: b"\x00\x00\x00\x01\x00"}


def binary_line(op: str, row: Row, field_count: bytes) -> bytes:
    """One COPY BINARY tuple of the staging table: op, the values as pgoutput sent them (the types' send format,
    spliced without decoding), then one "unchanged" flag per value."""
    parts = [field_count, b"\x00\x00\x00\x01", op.encode()]
    for value in row:
        if value is None or value is UNCHANGED:
            parts.append(_NULL)
        else:
            parts.append(_INT32.pack(len(value)))  # type: ignore[arg-type]
            parts.append(value)  # type: ignore[arg-type]
    parts.extend(_FLAG[value is UNCHANGED] for value in row)
    return b"".join(parts)


def copy_line(fields: tuple[Value, ...] | list[Value]) -> bytes:
    """One line of COPY text format. Most rows hold no byte that needs escaping: check them all at once."""
    if None not in fields and UNCHANGED not in fields:
        line = b"\t".join(fields)  # type: ignore[arg-type]
        if not _SPECIAL_NOT_TAB.search(line) and line.count(b"\t") == len(fields) - 1:  # no tab inside a value
            return line + b"\n"
    return b"\t".join(map(_copy_field, fields)) + b"\n"


def _text(value: Value) -> str | None:
    return None if value is None or value is UNCHANGED else value.decode()  # type: ignore[union-attr]


@dataclass
class TableBatch:
    """The changes of one table waiting in the current batch."""

    plan: TablePlan
    changes: dict[tuple[Value, ...], tuple[str, Row]] = field(default_factory=dict)  # key -> (op, row), keyed tables
    ordered: list[tuple[str, Row | None, Row | None]] = field(default_factory=list)  # (op, old, new), unkeyed tables
    counters: TableCounters = field(default_factory=TableCounters)

    def __len__(self) -> int:
        return len(self.changes) + len(self.ordered)


class Applier:
    """Buffers changes per table and writes them into the sink's open transaction on :meth:`write_pending`.

    Every statement goes through ``submit``: by default it runs at once; the stream passes a
    :class:`~airflow_connectors.cdc.engine.sink_writer.SinkWriter`'s, so batches are written by its thread, in order,
    while the next ones are buffered. What is submitted is never touched here again.
    """

    def __init__(
        self, sink: psycopg.Connection[Any], *, binary: bool = False, submit: Callable[[Job], None] | None = None
    ) -> None:
        self.sink = sink
        self.binary = binary  # values are pgoutput binary (send format): staged with COPY BINARY, no casts
        self.submit: Callable[[Job], None] = submit or _now
        self.batches: dict[str, TableBatch] = {}
        self.rows = 0  # buffered changes
        self.bytes = 0
        self._staged: set[str] = set()
        self._written: dict[str, TableCounters] = {}  # counters of what was written since the last written()

    # -- buffering -----------------------------------------------------------------------------------------------
    def _batch(self, plan: TablePlan) -> TableBatch:
        batch = self.batches.get(plan.name)
        if batch is None or batch.plan is not plan:
            if batch is not None:  # the plan changed (schema drift): apply what was buffered under the old one
                self.submit(partial(self.flush_table, batch))
            batch = self.batches[plan.name] = TableBatch(plan)
        return batch

    @staticmethod
    def _key(plan: TablePlan, row: Row) -> tuple[Value, ...]:
        return tuple(row[i] for i in plan.key_positions)

    def _account(self, batch: TableBatch, size: int) -> None:
        """``size``: the change's message size (counting it per value would cost more than it tells)."""
        self.rows += 1
        self.bytes += size
        batch.counters.bytes += size

    def insert(self, plan: TablePlan, row: Row, size: int = 0) -> None:
        batch = self._batch(plan)
        batch.counters.inserts += 1
        if plan.key:
            batch.changes[self._key(plan, row)] = ("I", row)
        else:
            batch.ordered.append(("I", None, row))
        self._account(batch, size)

    def update(self, plan: TablePlan, old: Row | None, new: Row, size: int = 0) -> None:
        batch = self._batch(plan)
        batch.counters.updates += 1
        if not plan.key:
            batch.ordered.append(("U", old, new))
            self._account(batch, size)
            return
        key = self._key(plan, new)
        if old is not None and any(value is not None for value in old):
            old_key = self._key(plan, old)
            if old_key != key:  # the key itself changed: the old row goes away
                batch.changes.pop(old_key, None)
                batch.changes[old_key] = ("D", old)
        previous = batch.changes.get(key)
        if previous is not None and previous[0] != "D" and UNCHANGED in new:
            # An earlier change of this batch holds the current value of the unchanged TOASTed columns.
            new = tuple(prev if value is UNCHANGED else value for value, prev in zip(new, previous[1], strict=True))
        op = "I" if previous is not None and previous[0] == "I" else "U"
        batch.changes.pop(key, None)  # re-insert: dict order is the order of each key's last change
        batch.changes[key] = (op if UNCHANGED not in new else "U", new)
        self._account(batch, size)

    def delete(self, plan: TablePlan, old: Row, size: int = 0) -> None:
        batch = self._batch(plan)
        batch.counters.deletes += 1
        if plan.key:
            key = self._key(plan, old)
            batch.changes.pop(key, None)
            batch.changes[key] = ("D", old)
        else:
            batch.ordered.append(("D", old, None))
        self._account(batch, size)

    def truncate(self, plans: list[TablePlan]) -> None:
        """TRUNCATE in order: what was buffered for those tables is obsolete, the sink tables are emptied now."""
        for plan in plans:
            batch = self.batches.get(plan.name)
            if batch is not None:
                batch.changes.clear()
                batch.ordered.clear()
            self.submit(partial(self.sink.execute, sql.SQL("TRUNCATE {}").format(table_ident(plan))))

    # -- writing -------------------------------------------------------------------------------------------------
    def write_pending(self) -> None:
        """Write every buffered change into the sink's open transaction (memory stays bounded in big transactions)."""
        batches = list(self.batches.values())
        self.batches = {}
        self.rows = self.bytes = 0
        if batches:
            self.submit(partial(self._flush_tables, batches))

    def write_table(self, name: str) -> None:
        """Write what is buffered for one table (before its shape changes)."""
        batch = self.batches.pop(name, None)
        if batch is not None:
            self.submit(partial(self.flush_table, batch))

    def _flush_tables(self, batches: list[TableBatch]) -> None:
        for batch in batches:
            self.flush_table(batch)

    def written(self) -> dict[str, TableCounters]:
        """The counters of everything written since the previous call (where the writes run)."""
        written, self._written = self._written, {}
        return written

    def flush_table(self, batch: TableBatch) -> None:
        if batch.plan.key:
            self._apply_keyed(batch)
        else:
            self._apply_unkeyed(batch)
        total = self._written.setdefault(batch.plan.name, TableCounters())
        total.inserts += batch.counters.inserts
        total.updates += batch.counters.updates
        total.deletes += batch.counters.deletes
        total.bytes += batch.counters.bytes
        total.rows = total.inserts + total.updates + total.deletes
        batch.changes.clear()
        batch.ordered.clear()
        batch.counters = TableCounters()

    def _stage_name(self, plan: TablePlan) -> sql.Identifier:
        # One staging table per table shape: a schema change (or the format) gets a new one.
        shape = (plan.name, tuple(column.sink_type for column in plan.columns), self.binary)
        return sql.Identifier(f"stage_{hashlib.sha256(repr(shape).encode()).hexdigest()[:16]}")

    def _ensure_stage(self, plan: TablePlan) -> sql.Identifier:
        stage = self._stage_name(plan)
        if stage.as_string(self.sink) not in self._staged:
            columns = [sql.SQL('op "char"')]
            columns += [
                sql.SQL("{} {}").format(sql.Identifier(f"v{i}"), sql.SQL(column.sink_type if self.binary else "text"))
                for i, column in enumerate(plan.columns)
            ]
            columns += [sql.SQL("{} boolean").format(sql.Identifier(f"u{i}")) for i in range(len(plan.columns))]
            self.sink.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({})").format(stage, sql.SQL(", ").join(columns))
            )
            self._staged.add(stage.as_string(self.sink))
        return stage

    def _apply_keyed(self, batch: TableBatch) -> None:
        if not batch.changes:
            return
        plan = batch.plan
        stage = self._ensure_stage(plan)
        width = len(plan.columns)
        self.sink.execute(sql.SQL("TRUNCATE {}").format(stage))
        fmt = sql.SQL(" (FORMAT BINARY)" if self.binary else "")
        with self.sink.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN{}").format(stage, fmt)) as copy:
            chunk: list[bytes] = [COPY_BINARY_HEADER] if self.binary else []
            field_count = _INT16.pack(1 + 2 * width)
            all_changed = b"\t".join([b"f"] * width)
            for op, row in batch.changes.values():
                if self.binary:
                    chunk.append(binary_line(op, row, field_count))
                else:
                    flags = (
                        b"\t".join(b"t" if value is UNCHANGED else b"f" for value in row)
                        if UNCHANGED in row
                        else all_changed
                    )
                    chunk.append(op.encode() + b"\t" + copy_line(row)[:-1] + b"\t" + flags + b"\n")
                if len(chunk) >= 2000:
                    copy.write(b"".join(chunk))
                    chunk.clear()
            if self.binary:
                chunk.append(COPY_BINARY_TRAILER)
            if chunk:
                copy.write(b"".join(chunk))
        target = table_ident(plan)
        index = {name: i for i, name in enumerate(plan.column_names)}

        def value(i: int) -> sql.Composable:
            if self.binary:  # staged in the sink's own types already
                return sql.SQL("s.{}").format(sql.Identifier(f"v{i}"))
            return sql.SQL("s.{}::{}").format(sql.Identifier(f"v{i}"), sql.SQL(plan.columns[i].sink_type))

        key_match = sql.SQL(" AND ").join(
            sql.SQL("t.{} = {}").format(sql.Identifier(name), value(index[name])) for name in plan.key
        )
        assignments = [
            sql.SQL("{} = CASE WHEN s.{} THEN t.{} ELSE {} END").format(
                sql.Identifier(column.name), sql.Identifier(f"u{i}"), sql.Identifier(column.name), value(i)
            )
            for i, column in enumerate(plan.columns)
            if column.name not in plan.key
        ]
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in plan.column_names)
        values = sql.SQL(", ").join(value(i) for i in range(width))
        if self.sink.info.server_version >= 150000:
            # One join does it all. An update of a row the sink lacks (inserted earlier in this batch) inserts it.
            update = (
                sql.SQL("UPDATE SET {}").format(sql.SQL(", ").join(assignments))
                if assignments
                else sql.SQL("DO NOTHING")
            )
            self.sink.execute(
                sql.SQL(
                    "MERGE INTO {} AS t USING {} AS s ON {} WHEN MATCHED AND s.op = 'D' THEN DELETE"
                    " WHEN MATCHED THEN {} WHEN NOT MATCHED AND s.op <> 'D' THEN INSERT ({}) VALUES ({})"
                ).format(target, stage, key_match, update, columns, values)
            )
            return
        self.sink.execute(
            sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE s.op = 'D' AND {}").format(target, stage, key_match)
        )
        if assignments:
            self.sink.execute(
                sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE s.op = 'U' AND {}").format(
                    target, sql.SQL(", ").join(assignments), stage, key_match
                )
            )
        conflict = sql.SQL(", ").join(sql.Identifier(name) for name in plan.key)
        updates = [
            sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name))
            for name in plan.column_names
            if name not in plan.key
        ]
        on_conflict = (
            sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates)) if updates else sql.SQL("DO NOTHING")
        )
        # PostgreSQL < 15 has no MERGE: delete, update, then insert what the sink lacks.
        self.sink.execute(
            sql.SQL(
                "INSERT INTO {} AS t ({}) SELECT {} FROM {} AS s WHERE s.op = 'I' OR (s.op = 'U' AND NOT EXISTS"
                " (SELECT 1 FROM {} AS t WHERE {})) ON CONFLICT ({}) {}"
            ).format(target, columns, values, stage, target, key_match, conflict, on_conflict)
        )

    def _apply_unkeyed(self, batch: TableBatch) -> None:
        plan = batch.plan
        target = table_ident(plan)
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in plan.column_names)
        # Whole-row match through the text form of each value (types like json have no equality operator).
        match = sql.SQL(" AND ").join(
            sql.SQL("{}::text IS NOT DISTINCT FROM (%s::{})::text").format(
                sql.Identifier(column.name), sql.SQL(column.sink_type)
            )
            for column in plan.columns
        )
        one_row = sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(target, match)
        delete = sql.SQL("DELETE FROM {} WHERE {}").format(target, one_row)
        assign = sql.SQL(", ").join(
            sql.SQL("{} = %s::{}").format(sql.Identifier(column.name), sql.SQL(column.sink_type))
            for column in plan.columns
        )
        update = sql.SQL("UPDATE {} SET {} WHERE {}").format(target, assign, one_row)
        inserts: list[Row] = []

        def copy_inserts() -> None:  # consecutive inserts go in one COPY, in order with the rest
            if inserts:
                with (
                    self.sink.cursor() as cur,
                    cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)) as copy,
                ):
                    copy.write(b"".join(map(copy_line, inserts)))
                inserts.clear()

        with self.sink.cursor() as cur:
            for op, old, new in batch.ordered:
                if op == "I":
                    assert new is not None
                    inserts.append(new)
                    continue
                copy_inserts()
                if op == "D":
                    assert old is not None
                    cur.execute(delete, [_text(v) for v in old])
                else:
                    assert new is not None
                    before = old if old is not None else new
                    merged = [b if n is UNCHANGED else n for n, b in zip(new, before, strict=True)]
                    cur.execute(update, [*map(_text, merged), *map(_text, before)])
        copy_inserts()
