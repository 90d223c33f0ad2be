"""Apply decoded changes to the sink in batches: COPY into a staging table, then one statement per kind per table.

Per batch and table only the last change of each key is applied (``last_change``: the final state is what
matters, and the source transaction order is kept for every key). UPDATEs whose TOASTed columns arrive ``UNCHANGED``
keep the value the sink has, or the value an earlier change of the same batch gave, so no value is ever replaced by
NULL and REPLICA IDENTITY FULL is not needed. Tables without a key (REPLICA IDENTITY FULL) are applied change by
change, matching one row on its whole old value. Nothing here commits: the stream commits a batch together with its
checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine import apply_sql
from airflow_connectors.cdc.engine._accel import binary_line, copy_line, keyed_change, staged_text_line
from airflow_connectors.cdc.engine.copy_format import COPY_BINARY_HEADER, COPY_BINARY_TRAILER, INT16
from airflow_connectors.cdc.engine.interface import TableCounters
from airflow_connectors.cdc.engine.last_change import Changes
from airflow_connectors.cdc.engine.pgoutput import UNCHANGED, Row, Value
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.sink_writer import Job


def _now(job: Job, rows: int = 0) -> None:
    job()


def _text(value: Value) -> str | None:
    return None if value is None or value is UNCHANGED else value.decode()  # type: ignore[union-attr]


@dataclass(slots=True)
class TableBatch:
    """The changes of one table waiting in the current batch."""

    plan: TablePlan
    changes: Changes = field(default_factory=dict)  # key -> (op, row), keyed tables
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
        self, sink: psycopg.Connection[Any], *, binary: bool = False, submit: Callable[[Job, int], None] | None = None
    ) -> None:
        self.sink = sink
        self.binary = binary  # values are pgoutput binary (send format): staged with COPY BINARY, no casts
        self.submit: Callable[[Job, int], None] = submit or _now  # (job, buffered changes it writes)
        self.batches: dict[str, TableBatch] = {}
        self.rows = 0  # buffered changes
        self.bytes = 0
        self._staged: set[str] = set()
        self._key_index: dict[TablePlan, bool] = {}  # whether the sink table has its key index (see PROBE_BY_KEY)
        self._written: dict[str, TableCounters] = {}  # counters of what was written since the last written()

    # -- buffering -----------------------------------------------------------------------------------------------
    def _batch(self, plan: TablePlan) -> TableBatch:
        """A new batch for ``plan``'s table; what was buffered under an older plan (schema drift) is applied first."""
        batch = self.batches.get(plan.name)
        if batch is not None:
            self.submit(partial(self.flush_table, batch), len(batch))
        batch = self.batches[plan.name] = TableBatch(plan)
        return batch

    def change(self, plan: TablePlan, op: str, old: Row | None, new: Row | None, size: int = 0) -> None:
        """Buffer one change: ``op`` I (``new``), U (``new``, and ``old`` when the source sent it) or D (``old``);
        ``size`` is its message's size (counting it per value would cost more than it tells)."""
        batch = self.batches.get(plan.name)
        if batch is None or batch.plan is not plan:
            batch = self._batch(plan)
        if plan.key:
            keyed_change(batch.changes, plan.key_positions, op, old, new)
        else:
            batch.ordered.append((op, old, new))
        counters = batch.counters
        if op == "U":
            counters.updates += 1
        elif op == "I":
            counters.inserts += 1
        else:
            counters.deletes += 1
        counters.rows += 1
        counters.bytes += size
        self.rows += 1
        self.bytes += size

    def truncate(self, plans: list[TablePlan]) -> None:
        """TRUNCATE in order: what was buffered for those tables is obsolete, the sink tables are emptied now."""
        for plan in plans:
            batch = self.batches.get(plan.name)
            if batch is not None:
                batch.changes.clear()
                batch.ordered.clear()
            self.submit(partial(self.sink.execute, apply_sql.truncate(plan)), 0)

    # -- writing -------------------------------------------------------------------------------------------------
    def write_pending(self) -> None:
        """Write every buffered change into the sink's open transaction (memory stays bounded in big transactions)."""
        batches = list(self.batches.values())
        rows = self.rows
        self.batches = {}
        self.rows = self.bytes = 0
        if batches:
            self.submit(partial(self._flush_tables, batches), rows)

    def write_table(self, name: str) -> None:
        """Write what is buffered for one table (before its shape changes)."""
        batch = self.batches.pop(name, None)
        if batch is not None:
            self.submit(partial(self.flush_table, batch), len(batch))

    def discard(self) -> None:
        """Forget what is buffered and written: the sink transaction was rolled back (staging tables it created
        too), with the writer idle."""
        self.batches = {}
        self.rows = self.bytes = 0
        self._written = {}
        self._staged.clear()
        self._key_index.clear()

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
        self._written.setdefault(batch.plan.name, TableCounters()).add(batch.counters)
        batch.changes.clear()
        batch.ordered.clear()
        batch.counters = TableCounters()

    def _ensure_stage(self, plan: TablePlan) -> sql.Identifier:
        stage = apply_sql.stage_name(plan, self.binary)
        if stage.as_string(self.sink) not in self._staged:
            self.sink.execute(apply_sql.create_stage(plan, stage, self.binary))
            self._staged.add(stage.as_string(self.sink))
        return stage

    def _apply_keyed(self, batch: TableBatch) -> None:
        if not batch.changes:
            return
        plan = batch.plan
        stage = self._ensure_stage(plan)
        width = len(plan.columns)
        self.sink.execute(sql.SQL("TRUNCATE {}").format(stage))
        with self.sink.cursor() as cur, cur.copy(apply_sql.copy_into_stage(stage, self.binary)) as copy:
            chunk: list[bytes] = [COPY_BINARY_HEADER] if self.binary else []
            field_count = INT16.pack(1 + 2 * width)
            all_changed = b"\t".join([b"f"] * width)
            for op, row in batch.changes.values():
                if self.binary:
                    chunk.append(binary_line(op, row, field_count))
                else:
                    chunk.append(staged_text_line(op, row, all_changed))
                if len(chunk) >= 2000:
                    copy.write(b"".join(chunk))
                    chunk.clear()
            if self.binary:
                chunk.append(COPY_BINARY_TRAILER)
            if chunk:
                copy.write(b"".join(chunk))
        self.sink.execute(apply_sql.PROBE_BY_KEY, (self._has_key_index(plan),))  # this table's, not the previous one's
        for statement in apply_sql.keyed_apply(plan, stage, self.binary, self.sink.info.server_version):
            self.sink.execute(statement)

    def _has_key_index(self, plan: TablePlan) -> bool:
        """Asked once per table and shape: the engine creates the key, but a sink table may have lost it."""
        known = self._key_index.get(plan)
        if known is None:
            row = self.sink.execute(
                apply_sql.KEY_INDEX_EXISTS, (plan.sink_schema, plan.sink_table, sorted(plan.key))
            ).fetchone()
            known = self._key_index[plan] = bool(row and row[0])
        return known

    def _apply_unkeyed(self, batch: TableBatch) -> None:
        plan = batch.plan
        delete, update = apply_sql.unkeyed_delete(plan), apply_sql.unkeyed_update(plan)
        inserts: list[Row] = []

        def copy_inserts() -> None:  # consecutive inserts go in one COPY, in order with the rest
            if inserts:
                with (
                    self.sink.cursor() as cur,
                    cur.copy(apply_sql.copy_into_table(plan)) as copy,
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
