"""The streaming half of a run: read pgoutput from the slot, apply it in batches, checkpoint, stop at the fence.

Exactly once: each sink transaction holds whole source transactions plus the checkpoint (the end LSN of the last
one); the slot is confirmed only after that commit; on restart, transactions that committed before the sink's
checkpoint are skipped. A source transaction larger than the buffer is written into the still-open sink transaction
in parts (bounded memory) and committed at its COMMIT. On PostgreSQL 14+ the source streams large transactions while
they run. One that streams alone is applied as it arrives, into a sink transaction that commits at its Stream
Commit (:class:`_Direct`): the sink keeps pace with the source instead of starting when it commits. Every streamed
transaction is also spooled (``streamed_txn``); when another transaction interleaves, a subtransaction rolls back or
the table's shape changes, the sink transaction is rolled back and the spool is applied at Stream Commit instead,
like any other transaction. A catch-up run ends at its fence, a logical message written when the run started, so it
finishes even on an idle source.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import psycopg

from airflow_connectors.cdc.connectors.models import Buffer, Catalog, MigrationStrategy
from airflow_connectors.cdc.engine import checkpoint
from airflow_connectors.cdc.engine._accel import decode, decode_streamed
from airflow_connectors.cdc.engine.apply import Applier
from airflow_connectors.cdc.engine.ddl_detect import TableFacts
from airflow_connectors.cdc.engine.drift import Drift, relation_plan, same_shape
from airflow_connectors.cdc.engine.interface import (
    EngineError,
    RunCancelled,
    RunReporter,
    StopCheck,
    TableCounters,
    TransientEngineError,
)
from airflow_connectors.cdc.engine.naming import FENCE_PREFIX
from airflow_connectors.cdc.engine.pgoutput import (
    Begin,
    Commit,
    Decoded,
    Delete,
    Insert,
    Message,
    Other,
    Relation,
    Row,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    Update,
    int_to_lsn,
    lsn_to_int,
)
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.replication import ReplicationStream
from airflow_connectors.cdc.engine.shapes import Shape
from airflow_connectors.cdc.engine.sink_writer import SinkWriter
from airflow_connectors.cdc.engine.slot import check_slot, slot_info
from airflow_connectors.cdc.engine.streamed_txn import StreamedTransactions

HEALTH_EVERY = 5.0  # seconds between slot lag samples
IDLE_COMMIT_SECONDS = 0.05  # no new change for this long: commit what is buffered instead of waiting for more
STOP_CHECK_SECONDS = 0.1
_OUTSIDE_XID = frozenset(b"EO")  # inside a stream block, Stream Stop and Origin carry no xid; all else is staged
_CHANGES = frozenset((Insert, Update, Delete))
SKIP_ALL = 2**64  # skip_until of a table to be copied again: none of its changes matter any more


class _NotDirect(Exception):
    """The transaction being applied as it arrives cannot go on that way (see :meth:`_Stream.apply_relation`)."""


@dataclass
class _Direct:
    """A streamed transaction applied as it arrives, in the open sink transaction, and what to restore if that
    sink transaction is rolled back."""

    xid: int
    tx_lsn: int  # stands in for its commit LSN (unknown yet) in skip decisions: see ``_Stream.may_apply_directly``
    applied_rows: int
    relations: dict[int, tuple[TablePlan, Callable[[Row], Row] | None]]
    pending: dict[int, Relation]
    names: dict[int, str]
    messages: int = 0


@dataclass
class StreamResult:
    applied_lsn: str
    tables: dict[str, TableCounters] = field(default_factory=dict)
    reached_fence: bool = False
    resync: list[str] = field(default_factory=list)  # tables to copy again: a change the WAL cannot carry
    shapes: dict[str, Shape] = field(default_factory=dict)  # each table's shape where the stream stopped


@dataclass(frozen=True)
class StreamOptions:
    """What one stream needs (``execute_run`` builds it; tests build it by hand)."""

    source_conninfo: str
    sink_conninfo: str
    slot_name: str
    publication: str
    start_lsn: str  # the sink checkpoint: everything committed before it is already applied
    plans: dict[str, TablePlan]  # the sink tables' recorded shapes (``shapes``), moved forward by Relation messages
    connector_id: str
    fence_run_id: str | None  # None: continuous, until should_stop
    skip_until: dict[str, str]  # table -> LSN of its resync copy: older changes are in it already
    buffer: Buffer
    migration: MigrationStrategy
    max_rows: int | None
    reporter: RunReporter
    should_stop: StopCheck
    catalog: Catalog = field(default_factory=Catalog)
    facts: dict[str, TableFacts] = field(default_factory=dict)  # recorded with the shapes
    binary_allowed: bool = True  # False when the source's current tables need text (e.g. a key dropped)
    # Verification: end, without applying it, at the first transaction that committed at or after this LSN (the
    # consistent point of the snapshot the sink is then compared with); the checkpoint stays before it.
    stop_before: str | None = None


class _Stream:
    def __init__(self, options: StreamOptions) -> None:
        self.plans = dict(options.plans)
        self.connector_id, self.fence_run_id, self.slot = options.connector_id, options.fence_run_id, options.slot_name
        self.skip_until = {table: lsn_to_int(lsn) for table, lsn in options.skip_until.items()}
        self.stop_before = lsn_to_int(options.stop_before) if options.stop_before is not None else None
        self.buffer, self.migration, self.catalog = options.buffer, options.migration, options.catalog
        self.max_rows, self.reporter, self.should_stop = options.max_rows, options.reporter, options.should_stop
        source_conninfo, start_lsn, plans = options.source_conninfo, options.start_lsn, options.plans
        reporter = options.reporter
        self.source = psycopg.connect(source_conninfo, autocommit=True)
        self.sink = psycopg.connect(options.sink_conninfo)
        # Binary where every table allows it: values then go from the WAL to the sink without a text round trip.
        # Keyless tables are matched value by value in SQL, which the text form keeps simple.
        self.binary = options.binary_allowed and all(plan.binary_safe and plan.key for plan in plans.values())
        # The only user of the sink connection from here on; while the stream waits for it, the source hears from us.
        self.writer = SinkWriter(while_waiting=lambda: self.stream.keep_alive(), max_rows=self.buffer.max_rows)
        self.applier = Applier(self.sink, binary=self.binary, submit=self.writer.submit)
        self.streamed = StreamedTransactions()
        self.direct: _Direct | None = None
        self.checkpoint = lsn_to_int(start_lsn)  # handed to the writer to commit
        self.committed = self.checkpoint  # committed in the sink (set by the writer's thread)
        self.stream = ReplicationStream(
            source_conninfo, options.slot_name, options.publication, start_lsn, binary=self.binary
        )
        reporter.log(f"streaming from {start_lsn} in pgoutput {'binary' if self.binary else 'text'} format")
        self.relations: dict[int, tuple[TablePlan, Callable[[Row], Row] | None]] = {}  # None: rows map as they are
        # A Relation message is applied with the first change after it (``change``), in commit order.
        self.pending: dict[int, Relation] = {}
        self.names: dict[int, str] = {}  # relation id -> table
        self.facts = dict(options.facts)
        self.drift = Drift(options.connector_id, self.migration, self.source, self.sink)
        self.resync: list[str] = []
        self.totals: dict[str, TableCounters] = {name: TableCounters() for name in plans}
        self.pending_end: int | None = None  # end LSN of the last whole source transaction not yet committed
        self.last_commit = time.monotonic()
        self.last_health = 0.0
        self.next_stop_check = 0.0
        self.applied_rows = 0
        self.tx_lsn = 0  # the commit LSN of the source transaction being read (protocol 1 form)
        self.skip_tx = False  # that transaction is already in the sink
        self.block_xid: int | None = None  # inside a stream block of this transaction

    def close(self) -> None:
        self.writer.close()
        self.streamed.close()
        self.stream.close()
        self.sink.close()
        self.source.close()

    # -- committing ----------------------------------------------------------------------------------------------
    def commit(self, lsn: int) -> None:
        """Hand what is buffered to the writer, to commit with the checkpoint ``lsn``; reading goes on meanwhile."""
        self.applier.write_pending()
        self.writer.submit(partial(self._commit_in_sink, lsn))
        self.checkpoint = max(self.checkpoint, lsn)
        self.pending_end = None
        self.last_commit = time.monotonic()

    def _commit_in_sink(self, lsn: int) -> None:
        """In the writer's thread, after the batches before it: the checkpoint commits with them."""
        for name, counters in self.applier.written().items():
            self.totals.setdefault(name, TableCounters()).add(counters)
            self.reporter.table_progress(name, self.totals[name])
        checkpoint.write_checkpoint(self.sink, self.connector_id, int_to_lsn(lsn))
        self.sink.commit()
        self.committed = max(self.committed, lsn)
        self.reporter.positions(applied_lsn=int_to_lsn(self.committed))

    def confirm(self) -> None:
        """Let the slot release what the sink has committed (only this thread speaks on the replication stream)."""
        self.writer.check()
        self.stream.confirm(self.committed)

    def finish(self) -> None:
        """Wait for the writer to commit everything handed to it."""
        self.writer.drain()
        self.confirm()

    def due(self) -> bool:
        return (
            self.applier.rows >= self.buffer.max_rows
            or self.applier.bytes >= self.buffer.max_bytes
            or time.monotonic() - self.last_commit >= self.buffer.flush_interval_ms / 1000
        )

    def health(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_health < HEALTH_EVERY:
            return
        self.last_health = now
        info = slot_info(self.source, self.slot)
        check_slot(info, self.slot)
        self.reporter.slot_health(lag_bytes=info.lag_bytes, wal_status=info.wal_status)

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> StreamResult:
        while True:
            if self.committed > self.stream.confirmed or self.writer.error is not None:
                self.confirm()
            if time.monotonic() >= self.next_stop_check:  # not per message: a stop check may cost microseconds
                self.next_stop_check = time.monotonic() + STOP_CHECK_SECONDS
                self.health()
                if self.should_stop():
                    self.leave_direct()
                    if self.pending_end is not None:
                        self.commit(self.pending_end)
                    self.finish()
                    raise RunCancelled()
            # With whole transactions waiting, a quiet moment is the time to commit them: lag stays low.
            idle_wait = IDLE_COMMIT_SECONDS if self.pending_end is not None else 1.0
            messages = self.stream.read(timeout=min(self.buffer.flush_interval_ms / 1000, idle_wait))
            if not messages and self.pending_end is not None:
                self.commit(self.pending_end)
            for data in messages:
                xid = self.block_xid
                if xid is not None and data[0] not in _OUTSIDE_XID:  # the most frequent message of a big transaction
                    self.streamed.add(xid, data)  # spooled undecoded: it may still be rolled back
                    if self.direct is not None and self.direct.xid == xid:
                        self.apply_direct(data)
                    continue
                result = self.message(data)
                if result is not None:
                    return result

    def message(self, data: bytes) -> StreamResult | None:
        """Any message but the changes inside a stream block; a result when the stream ends here."""
        message = decode(data)
        if self.direct is not None and not self.direct_goes_on(message):
            self.leave_direct()
        if isinstance(message, Begin):
            self.tx_lsn = message.final_lsn
            if self.stop_before is not None and self.tx_lsn >= self.stop_before:
                if self.pending_end is not None:
                    self.commit(self.pending_end)
                return self.result(True)
            self.skip_tx = self.tx_lsn < self.checkpoint  # already in the sink (re-sent after a restart)
        elif isinstance(message, (Insert, Update, Delete, Truncate)):
            if not self.skip_tx:
                self.apply(message, self.tx_lsn, len(data))
        elif isinstance(message, Relation):
            self.relation(message)
        elif isinstance(message, Commit):
            if not self.skip_tx and self.transaction_end(message.end_lsn):
                return self.result(False)
        elif isinstance(message, StreamStart):
            self.block_xid = message.xid
            self.streamed.start(message.xid, message.first_segment)
            if message.first_segment and self.may_apply_directly():
                self.enter_direct(message.xid)
        elif isinstance(message, StreamStop):
            self.block_xid = None
        elif isinstance(message, StreamAbort):
            self.leave_direct()  # rolled back whole, or a subtransaction: the spool knows which changes remain
            self.streamed.abort(message.xid, message.subxid)
        elif isinstance(message, StreamCommit):
            return self.stream_commit(message)
        elif isinstance(message, Message):
            if message.prefix == FENCE_PREFIX and self.fence_run_id is not None:
                if message.content.decode(errors="replace") == self.fence_run_id:
                    self.commit(max(message.lsn, self.pending_end or 0, self.checkpoint))
                    self.finish()
                    return self.result(True)
        return None

    def stream_commit(self, message: StreamCommit) -> StreamResult | None:
        if self.direct is not None and message.commit_lsn >= self.checkpoint:
            self.streamed.discard(message.xid)
            count, self.direct = self.direct.messages, None
            self.reporter.log(
                f"transaction {message.xid} streamed while in progress: {count} messages applied as they came"
            )
            return self.result(False) if self.transaction_end(message.end_lsn) else None
        self.leave_direct()
        if self.stop_before is not None and message.commit_lsn >= self.stop_before:
            if self.pending_end is not None:  # commits arrive in commit order: nothing older is left
                self.commit(self.pending_end)
            return self.result(True)
        if message.commit_lsn < self.checkpoint:  # already in the sink (re-sent after a restart)
            self.streamed.discard(message.xid)
            return None
        count = 0
        for raw in self.streamed.commit(message.xid):
            self.apply(decode(raw), message.commit_lsn, len(raw))
            count += 1
            self.stream.keep_alive()  # nothing is read meanwhile: the source must still hear from us
        self.reporter.log(f"transaction {message.xid} streamed while in progress: {count} messages applied")
        return self.result(False) if self.transaction_end(message.end_lsn) else None

    # -- a streamed transaction applied as it arrives -----------------------------------------------------------
    def may_apply_directly(self) -> bool:
        """Only a transaction streaming alone, and only where its commit LSN cannot change what is skipped: any
        commit LSN at or after the checkpoint (an older one is rolled back at Stream Commit) must decide alike for
        every table copied again (``skip_until``). Not while verifying (``stop_before`` decides at commit)."""
        return (
            self.direct is None
            and self.stop_before is None
            and len(self.streamed) == 1
            and all(lsn == SKIP_ALL or lsn <= self.checkpoint for lsn in self.skip_until.values())
        )

    def enter_direct(self, xid: int) -> None:
        if self.pending_end is not None:  # whole transactions first: the sink transaction is the streamed one's alone
            self.commit(self.pending_end)
        self.direct = _Direct(
            xid, self.checkpoint, self.applied_rows, dict(self.relations), dict(self.pending), dict(self.names)
        )

    def direct_goes_on(self, message: Decoded) -> bool:
        """Whether ``message`` (outside a stream block's changes) leaves the transaction applied as it arrives."""
        assert self.direct is not None
        if isinstance(message, (StreamStop, Other)):
            return True
        return isinstance(message, (StreamStart, StreamCommit)) and message.xid == self.direct.xid

    def apply_direct(self, data: bytes) -> None:
        assert self.direct is not None
        message = decode_streamed(data)
        try:
            if type(message) in _CHANGES:  # the usual message: straight to the applier
                self.change(message, self.direct.tx_lsn, len(data))  # type: ignore[arg-type]
            else:
                self.apply(message, self.direct.tx_lsn, len(data))
        except _NotDirect:
            self.leave_direct()
            return
        self.direct.messages += 1

    def leave_direct(self) -> None:
        """Roll back what the transaction applied as it arrived: its spool is applied at its Stream Commit."""
        direct, self.direct = self.direct, None
        if direct is None:
            return
        self.writer.drain()
        self.sink.rollback()
        self.applier.discard()
        self.applied_rows = direct.applied_rows
        self.relations, self.pending, self.names = direct.relations, direct.pending, direct.names
        self.reporter.log(f"transaction {direct.xid}: applying it once it commits, from its spool")

    def apply(self, message: Decoded, tx_lsn: int, size: int) -> None:
        """A message inside a source transaction that commits at ``tx_lsn``."""
        if isinstance(message, (Insert, Update, Delete)):
            self.change(message, tx_lsn, size)
        elif isinstance(message, Relation):
            self.relation(message)
        elif isinstance(message, Truncate):
            plans = [self.plans[self.names[relid]] for relid in message.relids if relid in self.names]
            for plan in plans:
                if tx_lsn >= self.skip_until.get(plan.name, 0):
                    self.applier.truncate([plan])

    def transaction_end(self, end_lsn: int) -> bool:
        """A source transaction is all buffered: commit now if due. True when the stream ends here: tables to
        copy again (then it streams on after the copy) or ``max_rows`` reached."""
        self.pending_end = end_lsn
        if self.resync or (self.max_rows is not None and self.applied_rows >= self.max_rows):
            self.commit(end_lsn)
            self.finish()
            return True
        if self.due():
            self.commit(end_lsn)
        return False

    def result(self, reached_fence: bool) -> StreamResult:
        self.finish()  # everything handed to the writer is committed before the result says where the sink is
        self.health(force=True)
        shapes = {name: Shape(plan, self.facts[name]) for name, plan in self.plans.items() if name in self.facts}
        return StreamResult(int_to_lsn(self.committed), self.totals, reached_fence, self.resync, shapes)

    def relation(self, message: Relation) -> None:
        name = f"{message.namespace}.{message.name}"
        if name not in self.plans:
            return  # a table outside the plan (e.g. a partition when replicating through the root)
        self.names[message.relid] = name
        self.pending[message.relid] = message
        self.relations.pop(message.relid, None)

    def apply_relation(self, message: Relation, name: str) -> None:
        """The table's first change after this Relation message: its shape is now the sink's, or the table is
        copied again when the WAL cannot carry the change."""
        plan = self.plans[name]
        entry = self.catalog.table(plan.source_schema, plan.source_table)
        new_plan = relation_plan(message, plan, entry=entry, source=self.source, binary=self.binary)
        if same_shape(new_plan, plan):
            new_plan = plan
        else:
            if self.direct is not None:  # drift commits in the sink: not inside a transaction that may roll back
                raise _NotDirect
            if self.binary and not new_plan.key:
                raise TransientEngineError(f"{name}: the table lost its key; streaming again in text format")
            self.applier.write_table(name)  # changes of the old shape go first
            self.writer.drain()  # the writer is idle: drift may use the sink connection
            moved, verdict = self.drift.relation(Shape(plan, self.facts[name]), new_plan)
            if moved is None:
                self.reporter.log(f"{verdict.reason()}; copying the table again")
                checkpoint.set_table_state(self.sink, self.connector_id, name, "stale")  # with the next commit
                self.skip_until[name] = SKIP_ALL
                self.resync.append(name)
                return
            self.reporter.log(f"{name}: schema change applied to the sink per migration_strategy")
            self.plans[name], self.facts[name], new_plan = moved.plan, moved.facts, moved.plan
        names = [column for column, _, _, _ in message.columns]
        mapping = [names.index(column.name) for column in new_plan.columns]
        self.relations[message.relid] = (new_plan, _row_mapping(mapping, len(names)))

    def change(self, message: Insert | Update | Delete, tx_lsn: int, size: int) -> None:
        name = self.names.get(message.relid)
        if name is None or tx_lsn < self.skip_until.get(name, 0):
            return  # not replicated, or already in this table's resync copy
        relation = self.pending.pop(message.relid, None)
        if relation is not None:
            self.apply_relation(relation, name)
        mapped = self.relations.get(message.relid)
        if mapped is None:
            return  # the table is to be copied again
        plan, row = mapped

        # A key-only old tuple ('K') has every column, nulls outside the key: it maps like a full one.
        if isinstance(message, Update):
            old, new = message.old, message.new
            if row is not None:
                old, new = (row(old) if old is not None else None), row(new)
            self.applier.change(plan, "U", old, new, size)
        elif isinstance(message, Insert):
            self.applier.change(plan, "I", None, message.new if row is None else row(message.new), size)
        else:
            self.applier.change(plan, "D", message.old if row is None else row(message.old), None, size)
        self.applied_rows += 1
        if self.applier.rows >= self.buffer.max_rows or self.applier.bytes >= self.buffer.max_bytes:
            # A large source transaction: write this part now, inside the sink transaction still open.
            self.applier.write_pending()


def _row_mapping(mapping: list[int], width: int) -> Callable[[Row], Row] | None:
    """Picks a sink row's values out of a Relation's row; None when they are the same (the usual case: no copy)."""
    if mapping == list(range(width)):
        return None
    pick = operator.itemgetter(*mapping)
    # itemgetter of one index returns the value, not a 1-tuple
    return pick if len(mapping) > 1 else (lambda values: (pick(values),))


def stream_changes(options: StreamOptions) -> StreamResult:
    """Apply changes from ``start_lsn`` until the fence (catch-up), ``max_rows``, or ``should_stop``."""
    try:
        stream = _Stream(options)
    except psycopg.OperationalError as exc:
        raise TransientEngineError(f"cannot connect: {exc}") from None
    try:
        return stream.run()
    except psycopg.OperationalError as exc:
        raise TransientEngineError(f"connection lost: {str(exc).strip().splitlines()[0]}") from None
    except psycopg.Error as exc:
        raise EngineError(f"the sink refused a batch: {str(exc).strip().splitlines()[0]}") from None
    finally:
        stream.close()
