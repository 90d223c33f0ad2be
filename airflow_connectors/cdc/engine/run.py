"""One replication run, end to end: plan the tables, snapshot what needs it, then stream to the fence.

First run (no sink checkpoint): publication + slot with an exported snapshot, copy every table inside it, then
stream from the slot's consistent point. Later runs resume from the sink checkpoint. ``resync=True`` starts over
(new slot, every table copied again); ``resync=[tables]`` re-copies those tables at a fresh consistent point (a
temporary slot's snapshot) while the others keep streaming, and the stream skips their changes already copied. A
catch-up run writes its fence first and ends when the stream reaches it.

Schema drift moves each sink table forward only (``drift``): the stream starts from the shapes recorded in the sink
with its checkpoint; a table whose source changed in a way the WAL cannot carry (``ddl_detect``) is copied again
through the same per-table resync, at run start, mid-stream, or at the fence, where the sink is also brought to the
source's current catalog (nothing older is left to replay there). Sink tables whose source table is no longer
replicated are kept (flagged), dropped or refused, as ``migration_strategy.dropped_tables`` says.

``verify=True``: a catch-up run that takes a consistent point before its fence, stops the stream exactly there and
compares every table (``verify.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc import io_deadline
from airflow_connectors.cdc.connectors.models import Buffer, Connector
from airflow_connectors.cdc.engine import checkpoint, shapes, sink_names, sink_schema
from airflow_connectors.cdc.engine.ddl_detect import TableFacts
from airflow_connectors.cdc.engine.drift import Drift
from airflow_connectors.cdc.engine.interface import (
    EngineError,
    EnginePhase,
    RunMode,
    RunReporter,
    RunRequest,
    RunResult,
    SinkTable,
    StopCheck,
    TableCounters,
    TransientEngineError,
    VerificationFailed,
)
from airflow_connectors.cdc.engine.naming import FENCE_PREFIX, publication_name, slot_name
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.slot import (
    check_slot,
    create_slot,
    create_slot_without_snapshot,
    drop_slot,
    ensure_publication,
    replication_connection,
    slot_info,
)
from airflow_connectors.cdc.engine.snapshot import copy_tables
from airflow_connectors.cdc.engine.source_catalog import build_plans, secondary_indexes
from airflow_connectors.cdc.engine.stream import StreamOptions, StreamResult, stream_changes
from airflow_connectors.cdc.engine.verify import ConsistentPoint, failure_message, open_consistent_point, verify_tables
from airflow_connectors.cdc.verification import Verification

# A catalog read that takes longer than this is a server that stopped answering (see ``_catalog_deadline``).
CATALOG_DEADLINE_SECONDS = 60.0


class _Run:
    def __init__(self, connector: Connector, request: RunRequest, reporter: RunReporter, should_stop: StopCheck):
        self.connector, self.request, self.reporter, self.should_stop = connector, request, reporter, should_stop
        self.source_cfg = connector.source.postgres
        self.sink_cfg = connector.sink.postgres
        self.source_ci = self.source_cfg.connection.conninfo()
        self.sink_ci = self.sink_cfg.connection.conninfo()
        self.slot = slot_name(connector.id)
        self.publication = publication_name(connector.id)
        self.counters: dict[str, TableCounters] = {}
        self.point: ConsistentPoint | None = None  # verify: where the stream stops and the tables are compared
        self.reached_point = False

    def _session(self, conninfo: str, timeout: int) -> psycopg.Connection[Any]:
        conn = psycopg.connect(conninfo, autocommit=True)
        role = "source" if conninfo == self.source_ci else "sink"
        with self._catalog_deadline(**{role: conn}):
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{timeout}s")))
        return conn

    def execute(self) -> RunResult:
        if self.request.verify and self.request.mode is not RunMode.CATCH_UP:
            raise EngineError("verify: only a catch_up run can verify (a continuous run never holds still)")
        try:
            result = self.replicate()
            if self.point is not None:
                if not self.reached_point:
                    raise EngineError(
                        "verify: the run stopped at limits.max_rows_per_run before the point it verifies at (what it "
                        "applied is kept): run again to catch up, then verify"
                    )
                result.verification = self.verify(self.point, set(result.sink_tables))
        finally:
            if self.point is not None:
                self.point.close()
        if result.verification is not None and result.verification.status != "equal":
            raise VerificationFailed(failure_message(result.verification, self.connector.id), result)
        return result

    def replicate(self) -> RunResult:
        with self._sessions() as (source, sink):
            checkpoint.ensure_state_schema(sink)
            plans = self.plans(source, sink)
            ensure_publication(source, self.publication, plans, self.source_cfg.partitions_as_root)
            drift = self._drift(source, sink)
            self.orphans(source, sink, plans, shapes.load(sink, self.connector.id))
            # A sink table that is gone (dropped by someone) is created and copied again, never left empty.
            missing = {name for name, plan in plans.items() if sink_schema.create_table(sink, plan)}
            start = checkpoint.read_checkpoint(sink, self.connector.id)
            if start is None or self.request.resync is True:
                start = self.initial_snapshot(source, sink, plans)
            else:
                check_slot(slot_info(source, self.slot), self.slot)
                wanted = self.tables_to_copy(drift, plans) | missing
                if wanted:
                    self.resync_tables(source, sink, [plans[name] for name in sorted(wanted)])
            fence_lsn, fence_catalog = None, None
            if self.request.mode is RunMode.CATCH_UP:
                if self.request.verify:  # before the fence: the stream stops at this snapshot's point
                    self.point = open_consistent_point(self.source_ci, self.slot)
                before = self.catalog(source, sink)
                row = source.execute(
                    "SELECT pg_logical_emit_message(false, %s, %s)::text", (FENCE_PREFIX, self.request.run_id)
                ).fetchone()
                fence_lsn = row[0] if row else None
                # The catalog as of the fence, when no DDL committed around it (else the next run aligns).
                fence_catalog = before if self.catalog(source, sink) == before else None
            self.reporter.positions(start_lsn=start, fence_lsn=fence_lsn)
            recorded = shapes.load(sink, self.connector.id)
        self.reporter.phase(EnginePhase.STREAMING)
        # A table the stream copies again from here on is past the fence: the fence's catalog is older than it.
        copied_after_fence: set[str] = set()
        position, binary_allowed = start, all(plan.binary_safe and plan.key for plan in plans.values())
        while True:
            result = self._stream(position, recorded, binary_allowed=binary_allowed)
            position = result.applied_lsn
            if not result.resync:
                break
            with self._sessions() as (source, sink):
                current = self.plans(source, sink)
                self.resync_tables(source, sink, [current[name] for name in result.resync if name in current])
                copied_after_fence |= set(result.resync)
                recorded = shapes.load(sink, self.connector.id)
        self.reached_point = result.reached_fence
        if result.reached_fence and fence_catalog is not None:
            self.align_at_fence(result, fence_catalog, skip=copied_after_fence)
        return RunResult(
            tables=self.counters,
            sink_tables={name: SinkTable(plan.sink_schema, plan.sink_table) for name, plan in plans.items()},
            start_lsn=start,
            fence_lsn=fence_lsn,
            applied_lsn=position,
        )

    @contextmanager
    def _sessions(self) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any]]]:
        with (
            self._session(self.source_ci, self.source_cfg.connection.operation_lock_timeout_seconds) as source,
            self._session(self.sink_ci, self.sink_cfg.connection.operation_lock_timeout_seconds) as sink,
        ):
            yield source, sink

    def _drift(self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any]) -> Drift:
        return Drift(self.connector.id, self.sink_cfg.migration_strategy, source, sink)

    @contextmanager
    def _catalog_deadline(self, **conns: psycopg.Connection[Any]) -> Iterator[None]:
        """Catalog reads are short on a server that answers: one that accepted the connection and then stalls is
        cut off after ``CATALOG_DEADLINE_SECONDS`` (a transient error: the run is retried, and waits off its worker
        while other runs wait), so it cannot hold a run worker forever. ``conns``: the connections by role."""
        with ExitStack() as stack:
            timers = {
                role: stack.enter_context(io_deadline.deadline(conn, CATALOG_DEADLINE_SECONDS))
                for role, conn in conns.items()
            }
            try:
                yield
            except psycopg.OperationalError:
                late = [role for role, timer in timers.items() if timer.fired]
                if late:
                    raise TransientEngineError(
                        f"the {late[0]} did not answer catalog queries within {CATALOG_DEADLINE_SECONDS:.0f} s"
                    ) from None
                raise

    def plans(self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any]) -> dict[str, TablePlan]:
        """The tables to replicate, as the source's catalog says now, under the sink names recorded for them."""
        with self._catalog_deadline(source=source, sink=sink):
            return self._plans(source, sink)

    def _plans(self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any]) -> dict[str, TablePlan]:
        target, catalog = self.sink_cfg.target_schema, self.source_cfg.catalog
        same_database = one_database(source, sink)
        skip = target if same_database and target not in catalog.schemas else None
        plans = build_plans(
            source,
            self.source_cfg,
            target,
            lambda tables: sink_names.resolve(sink, self.connector.id, target, tables, catalog),
            skip_schema=skip,
        )
        if same_database:
            refuse_replicating_onto_itself(plans)
        return plans

    def catalog(
        self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any]
    ) -> tuple[dict[str, TablePlan], dict[str, TableFacts | None]]:
        with self._catalog_deadline(source=source, sink=sink):
            plans = self._plans(source, sink)
            drift = self._drift(source, sink)
            return plans, {name: drift.facts(plan) for name, plan in plans.items()}

    def tables_to_copy(self, drift: Drift, plans: dict[str, TablePlan]) -> set[str]:
        """Tables to copy again before streaming: asked for, new, interrupted, stale, or changed on the source in a
        way the WAL cannot carry (a change migration_strategy says to fail on fails the run here)."""
        states = checkpoint.table_states(drift.sink, self.connector.id)
        recorded = shapes.load(drift.sink, self.connector.id)
        wanted = set(self.request.resync) if isinstance(self.request.resync, tuple) else set()
        unknown = wanted - set(plans)
        if unknown:
            raise EngineError(f"resync: {sorted(unknown)[0]} is not a replicated table of this connector")
        for name, plan in plans.items():
            state = states.get(name)
            if name in wanted:
                continue
            if state is None or state.state != "ready" or name not in recorded:
                wanted.add(name)
                continue
            verdict = drift.judge(recorded[name], plan, drift.facts(plan))
            if not verdict.clean:
                self.reporter.log(f"{verdict.reason()}; copying the table again")
                wanted.add(name)
        return wanted

    def orphans(
        self,
        source: psycopg.Connection[Any],
        sink: psycopg.Connection[Any],
        plans: dict[str, TablePlan],
        recorded: dict[str, shapes.Shape],
    ) -> None:
        """Sink tables whose source table is no longer replicated here: kept and flagged, dropped, or refused."""
        in_use = {(plan.sink_schema, plan.sink_table) for plan in plans.values()}
        policy = self.sink_cfg.migration_strategy.dropped_tables
        for name, shape in sorted(recorded.items()):
            old = (shape.plan.sink_schema, shape.plan.sink_table)
            if name in plans and old == (plans[name].sink_schema, plans[name].sink_table):
                continue
            now = source.execute(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s",
                (shape.facts.oid,),
            ).fetchone()
            why = (
                f"its sink table moved to {plans[name].sink_schema}.{plans[name].sink_table}"
                if name in plans
                else f"it is now {now[0]}"
                if now and now[0] != name
                else "it was dropped, detached from its replicated root, or left out of the catalog"
            )
            sink_name = f"{old[0]}.{old[1]}"
            if policy == "fail":
                raise EngineError(
                    f"{name} is no longer replicated into {sink_name} ({why}) and migration_strategy.dropped_tables "
                    f"is 'fail'; set it to 'keep' or 'apply', or drop {sink_name} yourself"
                )
            with sink.transaction():
                if policy == "apply" and old not in in_use:
                    sink.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*old)))
                    self.reporter.log(f"{name} is no longer replicated ({why}): dropped {sink_name}")
                else:
                    self.reporter.log(f"{name} is no longer replicated ({why}): {sink_name} kept, marked orphaned")
                shapes.forget(sink, self.connector.id, name)
                if name not in plans:
                    checkpoint.set_table_state(sink, self.connector.id, name, "orphaned")

    def _stream(self, start: str, recorded: dict[str, shapes.Shape], *, binary_allowed: bool) -> StreamResult:
        skip_until = {
            name: state.skip_until
            for name, state in self._table_states().items()
            if state.skip_until is not None and name in recorded
        }
        limits = self.connector.limits
        result = stream_changes(
            StreamOptions(
                source_conninfo=self.source_ci,
                sink_conninfo=self.sink_ci,
                slot_name=self.slot,
                publication=self.publication,
                start_lsn=start,
                plans={name: shape.plan for name, shape in recorded.items()},
                facts={name: shape.facts for name, shape in recorded.items()},
                connector_id=self.connector.id,
                fence_run_id=self.request.run_id if self.request.mode is RunMode.CATCH_UP else None,
                skip_until=skip_until,
                buffer=self.connector.buffer or Buffer(),
                migration=self.sink_cfg.migration_strategy,
                max_rows=limits.max_rows_per_run if limits else None,
                reporter=self.reporter,
                should_stop=self.should_stop,
                catalog=self.source_cfg.catalog,
                binary_allowed=binary_allowed,
                stop_before=self.point.lsn if self.point is not None else None,
            )
        )
        for name, counters in result.tables.items():
            self.counters.setdefault(name, TableCounters()).add(counters)
        return result

    def verify(self, point: ConsistentPoint, tables: set[str]) -> Verification:
        """Compare ``tables`` at ``point``, with their columns as the source catalog has them in its snapshot."""
        self.reporter.log(f"verifying {len(tables)} tables at {point.lsn}")
        with psycopg.connect(self.source_ci) as source, psycopg.connect(self.sink_ci, autocommit=True) as sink:
            source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            source.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(point.snapshot)))
            plans = [plan for name, plan in self.plans(source, sink).items() if name in tables]
        verification = verify_tables(
            source_conninfo=self.source_ci,
            sink_conninfo=self.sink_ci,
            point=point,
            plans=plans,
            workers=min(self.source_cfg.connection.pool_size, self.sink_cfg.connection.pool_size),
            should_stop=self.should_stop,
        )
        differing = verification.differing()
        self.reporter.log(
            f"verified {len(plans)} tables in {verification.seconds:.1f}s: "
            + (f"{len(differing)} differ ({', '.join(differing[:5])})" if differing else "all equal")
        )
        return verification

    def _table_states(self) -> dict[str, checkpoint.TableState]:
        with self._session(self.sink_ci, self.sink_cfg.connection.operation_lock_timeout_seconds) as sink:
            return checkpoint.table_states(sink, self.connector.id)

    def align_at_fence(
        self,
        result: StreamResult,
        fence_catalog: tuple[dict[str, TablePlan], dict[str, TableFacts | None]],
        *,
        skip: set[str],
    ) -> None:
        """Nothing older than the fence is left to replay: bring each sink table to the catalog as of the fence
        (DDL no row change followed); what the WAL cannot carry is copied again, now."""
        plans, facts = fence_catalog
        with self._sessions() as (source, sink):
            drift = self._drift(source, sink)
            stale = []
            for name, plan in plans.items():
                shape = result.shapes.get(name)
                if shape is None or name in skip:
                    continue
                with sink.transaction():
                    moved, verdict = drift.align(shape, plan, facts[name])
                if moved:
                    self.reporter.log(f"{name}: schema change applied to the sink per migration_strategy")
                if not verdict.clean:
                    self.reporter.log(f"{verdict.reason()}; copying the table again")
                    stale.append(name)
            if stale:
                current = self.plans(source, sink)
                self.resync_tables(source, sink, [current[name] for name in stale if name in current])

    def initial_snapshot(
        self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any], plans: dict[str, TablePlan]
    ) -> str:
        """Start over: a new slot, every table emptied and copied inside its exported snapshot."""
        skip = self.source_cfg.replication_type.logical_replication.skip_snapshots
        if not skip:
            self.reporter.phase(EnginePhase.SNAPSHOTTING)
        checkpoint.forget(sink, self.connector.id)
        drop_slot(source, self.slot)
        facts = self._empty(source, sink, list(plans.values()))
        repl = replication_connection(self.source_ci)
        try:
            if skip:
                lsn = create_slot_without_snapshot(repl, self.slot)
            else:
                lsn, snapshot = create_slot(repl, self.slot)
                self.counters.update(self._copy(snapshot, list(plans.values())))
        finally:
            repl.close()  # ends the exported snapshot; the slot stays
        self._finish_tables(source, sink, list(plans.values()), facts, skip_until=None)
        checkpoint.write_checkpoint(sink, self.connector.id, lsn)
        return lsn

    def resync_tables(
        self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any], plans: list[TablePlan]
    ) -> None:
        """Copy ``plans`` again at a fresh consistent point; the stream skips their changes before it."""
        self.reporter.phase(EnginePhase.SNAPSHOTTING)
        facts = self._empty(source, sink, plans)
        repl = replication_connection(self.source_ci)
        try:
            lsn, snapshot = create_slot(repl, f"{self.slot[:40]}_rs_{uuid.uuid4().hex[:8]}", temporary=True)
            self.counters.update(self._copy(snapshot, plans))
        finally:
            repl.close()  # a temporary slot goes with its connection
        self._finish_tables(source, sink, plans, facts, skip_until=lsn)

    def _empty(
        self, source: psycopg.Connection[Any], sink: psycopg.Connection[Any], plans: list[TablePlan]
    ) -> dict[str, TableFacts | None]:
        """Empty the sink tables and give them the plans' columns; the source facts the copies will follow (read
        before the copy's consistent point: a change after it is then seen as a change, never missed)."""
        drift = self._drift(source, sink)
        drop_others = self.sink_cfg.migration_strategy.dropped_columns == "apply"
        facts = {}
        for plan in plans:
            checkpoint.set_table_state(sink, self.connector.id, plan.name, "snapshotting")
            sink_schema.truncate(sink, plan)
            sink_schema.drop_key(sink, plan)
            sink_schema.conform(sink, plan, drop_others=drop_others)
            facts[plan.name] = drift.facts(plan)
        return facts

    def _copy(self, snapshot: str, plans: list[TablePlan]) -> dict[str, TableCounters]:
        return copy_tables(
            source_conninfo=self.source_ci,
            sink_conninfo=self.sink_ci,
            snapshot=snapshot,
            plans=plans,
            parallel=self.source_cfg.parallel_snapshots_enabled,
            workers=min(self.source_cfg.connection.pool_size, self.sink_cfg.connection.pool_size),
            reporter=self.reporter,
            should_stop=self.should_stop,
        )

    def _finish_tables(
        self,
        source: psycopg.Connection[Any],
        sink: psycopg.Connection[Any],
        plans: list[TablePlan],
        facts: dict[str, TableFacts | None],
        *,
        skip_until: str | None,
    ) -> None:
        for plan in plans:
            sink_schema.add_key(sink, plan)  # after the load: one sorted build instead of one insert per row
            sink_schema.create_indexes(sink, plan, secondary_indexes(source, plan))
            table_facts = facts[plan.name]
            if table_facts is None:
                raise TransientEngineError(f"{plan.name} disappeared from the source while it was copied")
            with sink.transaction():
                shapes.save(sink, self.connector.id, plan, table_facts)
                checkpoint.set_table_state(sink, self.connector.id, plan.name, "ready", skip_until)


def one_database(source: psycopg.Connection[Any], sink: psycopg.Connection[Any]) -> bool:
    """Whether source and sink are the same database (schema ``a`` replicated into schema ``b`` of it)."""
    identity = "SELECT system_identifier::text || '/' || current_database() FROM pg_control_system()"
    return source.execute(identity).fetchone() == sink.execute(identity).fetchone()


def refuse_replicating_onto_itself(plans: dict[str, TablePlan]) -> None:
    """In one database a sink table must never be a replicated source table: the snapshot would empty it."""
    sources = {(plan.source_schema, plan.source_table) for plan in plans.values()}
    for plan in plans.values():
        if (plan.sink_schema, plan.sink_table) in sources:
            raise EngineError(
                f"the sink table {plan.sink_schema}.{plan.sink_table} is a replicated source table (source and sink "
                "are the same database): choose another sink.postgres.target_schema"
            )


def execute_run(connector: Connector, request: RunRequest, reporter: RunReporter, should_stop: StopCheck) -> RunResult:
    """Execute one run of ``connector`` (see the module docstring); raises the engine errors of ``interface``."""
    try:
        return _Run(connector, request, reporter, should_stop).execute()
    except psycopg.OperationalError as exc:
        raise TransientEngineError(f"database unavailable: {str(exc).strip().splitlines()[0]}") from None
    except psycopg.Error as exc:
        raise EngineError(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
