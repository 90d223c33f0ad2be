"""One claimed run, executed to its end: load the connector, run the engine with retries, record the outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.connectors.secrets import SecretBox, SecretKeyError, scrub, secret_values
from airflow_connectors.cdc.connectors.store import ConnectorNotFound, get_connector
from airflow_connectors.cdc.engine.interface import (
    EngineError,
    RunCancelled,
    RunMode,
    RunReporter,
    RunRequest,
    RunResult,
    StopCheck,
    TransientEngineError,
    VerificationFailed,
)
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.heartbeat import Heartbeat, RunControl, ShutdownFlag
from airflow_connectors.cdc.runs.models import Run
from airflow_connectors.cdc.runs.reporter import StoreReporter
from airflow_connectors.cdc.runs.state_machine import LeaseLost, RunNotFound, RunState, transition

if TYPE_CHECKING:
    from airflow_connectors.cdc.runs.pool import WorkerOptions

logger = logging.getLogger(__name__)

ExecuteRun = Callable[[Any, RunRequest, RunReporter, StopCheck], RunResult]


@dataclass(frozen=True)
class Retry:
    """A run handed back to the queue between two attempts (other runs were waiting): when to try it again, and its
    retry window so far (the window keeps running while others use the worker)."""

    at: float  # time.monotonic()
    window_started: float
    delay: float


def _nobody_waits() -> bool:
    return False


@dataclass
class RunContext:
    """Everything one execution of one run needs; built by the worker loop after it claimed the run."""

    run: Run
    connector: Any
    options: WorkerOptions
    execute: ExecuteRun
    control: RunControl
    reporter: StoreReporter
    retry_window: float
    others_waiting: Callable[[], bool] = _nobody_waits
    resumed: Retry | None = None


@dataclass(frozen=True)
class Outcome:
    """How an execution ended; ``state`` None means "not ours to record" (the lease was lost)."""

    state: RunState | None
    error: str | None = None
    result: RunResult | None = None
    retry: Retry | None = None  # QUEUED to wait for its next attempt off the worker


def execute_claimed(ctx: RunContext) -> Outcome:
    """Run the engine, retrying transient errors within the retry window; say how the run ended."""
    secrets = secret_values(ctx.connector)
    window_started: float | None = ctx.resumed.window_started if ctx.resumed else None
    delay = ctx.resumed.delay if ctx.resumed else 1.0
    while True:
        updates_before = ctx.reporter.updates
        try:
            result = ctx.execute(ctx.connector, ctx.run.to_request(), ctx.reporter, ctx.control.should_stop)
        except RunCancelled:
            return _stopped(ctx)
        except TransientEngineError as exc:
            message = scrub(str(exc), secrets)
            now = time.monotonic()
            if window_started is None or ctx.reporter.updates != updates_before:  # progress resets the window
                window_started, delay = now, 1.0
            left = ctx.retry_window - (now - window_started)
            if left <= 0:
                return Outcome(RunState.FAILED, error=message)
            logger.warning("run %s: transient error, retrying in %.1fs: %s", ctx.run.run_id, delay, message)
            wait, next_delay = min(delay, left), min(delay * 2, ctx.options.max_backoff_seconds)
            if ctx.control.should_stop():
                return _stopped(ctx)
            if ctx.others_waiting():  # waiting here would make them wait too: back to the queue until then
                return Outcome(RunState.QUEUED, retry=Retry(time.monotonic() + wait, window_started, next_delay))
            if ctx.control.wait(wait):
                return _stopped(ctx)
            delay = next_delay
        except EngineError as exc:
            if ctx.control.should_stop():  # the error is the stop itself (its connections were broken)
                return _stopped(ctx)
            kept = exc.result if isinstance(exc, VerificationFailed) else None  # the report stays on the run
            return Outcome(RunState.FAILED, error=scrub(str(exc), secrets), result=kept)
        except Exception as exc:  # a bug in the engine must still end the run with a message, not hang it
            if ctx.control.should_stop():
                return _stopped(ctx)
            logger.error("run %s: engine crashed: %s", ctx.run.run_id, type(exc).__name__)
            return Outcome(RunState.FAILED, error=scrub(f"internal error: {type(exc).__name__}: {exc}", secrets))
        else:
            return Outcome(RunState.SUCCEEDED, result=result)


def _stopped(ctx: RunContext) -> Outcome:
    reason = ctx.control.reason()
    if reason == "lease_lost":
        logger.warning("run %s: lease lost; leaving the run to whoever recovered it", ctx.run.run_id)
        return Outcome(None)
    if reason == "shutdown":
        return Outcome(RunState.QUEUED)
    if reason == "deadline":
        if ctx.run.mode is RunMode.CONTINUOUS:  # a bounded continuous run: stopping at the limit is its end
            return Outcome(RunState.SUCCEEDED)
        limit = ctx.connector.limits.max_run_duration_seconds
        return Outcome(
            RunState.FAILED,
            error=f"the run exceeded limits.max_run_duration_seconds ({limit} s) before reaching its fence",
        )
    return Outcome(RunState.CANCELLED)


def record_outcome(conn: psycopg.Connection[Any], run_id: str, worker_id: str, outcome: Outcome) -> None:
    """Write the end of an execution through the state machine (only while we still hold the lease)."""
    state = outcome.state
    if state is None:
        return
    changes: dict[str, Any] = {"error": outcome.error} if outcome.error is not None else {}
    if outcome.result is not None:
        changes.update(_result_columns(outcome.result))
    try:
        current = run_store.current_state(conn, run_id)
        if state is RunState.QUEUED and current is RunState.QUEUED:
            run_store.release_lease(conn, run_id, worker_id)
            return
        if state is RunState.SUCCEEDED and current is RunState.QUEUED:
            # The engine finished without reporting a phase: nothing to snapshot, it streamed to its fence.
            transition(conn, run_id, RunState.STREAMING, worker_id=worker_id)
        transition(conn, run_id, state, worker_id=worker_id, changes=changes)
        logger.info("run %s: %s%s", run_id, state.value, f": {outcome.error}" if outcome.error else "")
    except (LeaseLost, RunNotFound) as exc:
        logger.warning("run %s: could not record %s: %s", run_id, state.value, exc)


def _result_columns(result: RunResult) -> dict[str, Any]:
    columns: dict[str, Any] = {
        name: value
        for name, value in (
            ("start_lsn", result.start_lsn),
            ("fence_lsn", result.fence_lsn),
            ("applied_lsn", result.applied_lsn),
        )
        if value is not None
    }
    if result.tables:
        tables = {name: asdict(counters) for name, counters in result.tables.items()}
        columns["tables"] = tables
        columns["rows_total"] = sum(counters["rows"] for counters in tables.values())
    if result.sink_tables:
        columns["sink_tables"] = {name: asdict(table) for name, table in result.sink_tables.items()}
    if result.verification is not None:
        columns["verification"] = result.verification.model_dump(mode="json")
    return columns


def run_one(
    conn: psycopg.Connection[Any],
    dsn: str,
    secrets: SecretBox,
    options: WorkerOptions,
    execute: ExecuteRun,
    worker_id: str,
    row: dict[str, Any],
    shutdown: ShutdownFlag,
    deferred: dict[str, Retry] | None = None,
) -> Outcome:
    """Execute one claimed run to its end (or until this process is asked to stop, or it waits to be retried while
    other runs wait: then it goes back to the queue and into ``deferred``)."""
    run = Run.from_row(row)
    deferred = {} if deferred is None else deferred
    resumed = deferred.pop(run.run_id, None)
    try:
        connector = load_connector(conn, secrets, run.connector_id)
    except SecretKeyError as exc:  # a wrong key fails the run with the remedy; it must not kill the worker
        outcome = Outcome(RunState.FAILED, error=str(exc))
        record_outcome(conn, run.run_id, worker_id, outcome)
        return outcome
    if connector is None:
        outcome = Outcome(RunState.FAILED, error="the connector no longer exists")
        record_outcome(conn, run.run_id, worker_id, outcome)
        return outcome
    limits = connector.limits
    limit = limits.max_run_duration_seconds if limits is not None else None
    started: datetime = row["started_at"]
    control = RunControl(shutdown, started.timestamp() + limit if limit else None)
    heartbeat: Heartbeat | None = None

    def apply_phase(state: RunState) -> None:
        assert heartbeat is not None
        heartbeat.apply_phase(state)

    reporter = StoreReporter(run.run_id, apply_phase)
    heartbeat = Heartbeat(dsn, run.run_id, worker_id, options.lease_seconds, reporter, control)
    heartbeat.start()
    logger.info("run %s: started by %s (connector %s, %s)", run.run_id, worker_id, run.connector_id, run.mode.value)
    try:
        retry_window = connector.source.postgres.replication_type.logical_replication.retry_window_seconds
        context = RunContext(run, connector, options, execute, control, reporter, float(retry_window))
        context.others_waiting = lambda: run_store.runs_waiting(conn, [run.run_id, *not_due(deferred)])
        context.resumed = resumed
        outcome = execute_claimed(context)
    finally:
        heartbeat.stop()
    record_outcome(conn, run.run_id, worker_id, outcome)
    if outcome.retry is not None:
        deferred[run.run_id] = outcome.retry
        logger.info("run %s: back in the queue until its next attempt (other runs were waiting)", run.run_id)
    return outcome


def not_due(deferred: dict[str, Retry]) -> list[str]:
    """Runs handed back to the queue whose next attempt is not due yet (not to be claimed again before)."""
    now = time.monotonic()
    return [run_id for run_id, retry in deferred.items() if retry.at > now]


def load_connector(conn: psycopg.Connection[Any], secrets: SecretBox, connector_id: str) -> Connector | None:
    """The connector with its secrets decrypted, or None if it was deleted meanwhile."""
    try:
        return get_connector(conn, secrets, connector_id).connector
    except ConnectorNotFound:
        return None
