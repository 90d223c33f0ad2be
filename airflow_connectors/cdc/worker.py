"""Run workers: separate processes that execute queued runs, so a slow or crashing run never blocks the API.

Each worker claims a run with ``FOR UPDATE SKIP LOCKED`` (so two workers, in one service process or many, never
take the same run) and holds a lease on it that a heartbeat thread renews. A worker that dies (SIGKILL, OOM, lost
machine) stops renewing; any worker then finds the expired lease and puts the run back in the queue (or fails it
after ``max_recoveries`` deaths); the engine resumes from the sink's checkpoint, so nothing is applied twice.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, SecretStr

from airflow_connectors.cdc import io_deadline, run_store
from airflow_connectors.cdc.engine.interface import (
    EngineError,
    RunCancelled,
    RunMode,
    RunReporter,
    RunRequest,
    RunResult,
    StopCheck,
    TransientEngineError,
)
from airflow_connectors.cdc.models import Connector
from airflow_connectors.cdc.run_models import Run
from airflow_connectors.cdc.run_reporter import StoreReporter
from airflow_connectors.cdc.runs import LeaseLost, RunNotFound, RunState, transition
from airflow_connectors.cdc.scheduler import Scheduler
from airflow_connectors.cdc.secrets import SecretBox, SecretKeyError

logger = logging.getLogger(__name__)

ExecuteRun = Callable[[Any, RunRequest, RunReporter, StopCheck], RunResult]
DEFAULT_ENGINE = "airflow_connectors.cdc.engine:execute_run"
# After a stop (cancel, deadline, lost lease, shutdown) the engine gets this long to notice between batches; then its
# connections are broken under it, so a stop takes effect within ~10 s whatever the source or sink does.
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerOptions:
    processes: int = 2
    lease_seconds: float = 15.0  # a dead worker's run is recovered this long after its last heartbeat
    poll_seconds: float = 1.0  # idle workers also wake on NOTIFY, this is only the fallback
    max_recoveries: int = 3  # worker deaths tolerated per run before it fails
    # "module:function" with execute_run's signature; a name, not a callable, so spawned processes import it.
    engine: str = DEFAULT_ENGINE
    max_backoff_seconds: float = 30.0


def resolve_engine(spec: str) -> ExecuteRun:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class ShutdownFlag:
    """Set when the worker process should stop: the pool asked, or the service process that started it died
    (then the worker stops too, instead of running on as an orphan nobody supervises)."""

    def __init__(self, event: multiprocessing.synchronize.Event) -> None:
        self.event = event
        self.parent = os.getppid()

    def is_set(self) -> bool:
        return self.event.is_set() or os.getppid() != self.parent


# --------------------------------------------------------------------------------------------------- recovery


def recover_expired_runs(conn: psycopg.Connection[Any], max_recoveries: int) -> list[str]:
    """Requeue (or cancel / fail) runs whose worker stopped heartbeating. Safe to call from every worker."""
    recovered = []
    with conn.transaction():
        for row in run_store.lock_expired_leases(conn):
            run_id, state = row["run_id"], RunState(row["state"])
            run_store.count_recovery(conn, run_id)
            if row["cancel_requested"]:
                transition(conn, run_id, RunState.CANCELLED)
            elif row["recoveries"] + 1 > max_recoveries:
                message = f"the worker executing this run died {row['recoveries'] + 1} times; giving up"
                transition(conn, run_id, RunState.FAILED, changes={"error": message})
            elif state is not RunState.QUEUED:
                transition(conn, run_id, RunState.QUEUED)
            logger.warning("run %s: worker lease expired in state %s; recovered", run_id, state.value)
            recovered.append(run_id)
    return recovered


# --------------------------------------------------------------------------------------------------- one run


class RunControl:
    """Why a run should stop, as seen by ``should_stop``; fed by the heartbeat thread and the process."""

    def __init__(self, shutdown: ShutdownFlag, deadline: float | None):
        self.shutdown = shutdown
        self.deadline = deadline  # epoch seconds, from limits.max_run_duration_seconds
        self.cancel_requested = False
        self.lease_lost = False

    def reason(self) -> str | None:
        if self.lease_lost:
            return "lease_lost"
        if self.cancel_requested:
            return "cancel"
        if self.deadline is not None and time.time() >= self.deadline:
            return "deadline"
        if self.shutdown.is_set():
            return "shutdown"
        return None

    def should_stop(self) -> bool:
        return self.reason() is not None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if a stop reason appeared meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.should_stop():
                return True
            self.shutdown.event.wait(min(left, 0.2))
        return self.should_stop()


class Heartbeat(threading.Thread):
    """Renews the lease, writes throttled progress and picks up cancel requests about once a second; enforces stops
    on an engine stuck on a peer that stopped answering (see :data:`STOP_GRACE_SECONDS`)."""

    def __init__(
        self, dsn: str, run_id: str, worker_id: str, lease: float, reporter: StoreReporter, control: RunControl
    ) -> None:
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.dsn = dsn
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.lock = threading.Lock()  # the reporter applies phases on this connection too
        self.run_id, self.worker_id, self.lease = run_id, worker_id, lease
        self.reporter, self.control = reporter, control
        self.done = threading.Event()
        self.last_renewed = time.monotonic()
        # Sockets of this worker before the run (state store, listener, this heartbeat): everything opened later
        # belongs to the engine. A worker process executes one run at a time.
        self.own_sockets = io_deadline.socket_fds()
        self.stop_seen: float | None = None
        self.broke_engine_connections = False

    def run(self) -> None:
        while not self.done.wait(min(1.0, self.lease / 5)):
            self.beat()
            self.enforce_stop()

    def enforce_stop(self) -> None:
        reason = self.control.reason()
        if reason is None or self.broke_engine_connections:
            return
        now = time.monotonic()
        if self.stop_seen is None:
            self.stop_seen = now
        if now - self.stop_seen < STOP_GRACE_SECONDS:
            return
        self.broke_engine_connections = True
        with self.lock:
            keep = self.own_sockets | {io_deadline.connection_fd(self.conn)}
        engine_sockets = io_deadline.socket_fds() - keep
        logger.warning(
            "run %s: the engine did not stop within %.0f s (%s); breaking its %d connection(s)",
            self.run_id,
            STOP_GRACE_SECONDS,
            reason,
            len(engine_sockets),
        )
        for fd in engine_sockets:
            io_deadline.shutdown_fd(fd)

    def beat(self) -> None:
        try:
            with self.lock:
                if self.conn.broken:
                    self.conn = psycopg.connect(self.dsn, autocommit=True)
                cancel = run_store.heartbeat(
                    self.conn, self.run_id, self.worker_id, self.lease, self.reporter.take_progress()
                )
        except psycopg.Error as exc:  # state store blip: keep trying until the lease would have run out
            logger.warning("run %s: heartbeat failed: %s", self.run_id, exc)
            if time.monotonic() - self.last_renewed > self.lease:
                self.control.lease_lost = True
            return
        self.last_renewed = time.monotonic()
        if cancel is None:
            self.control.lease_lost = True
        elif cancel:
            self.control.cancel_requested = True

    def apply_phase(self, state: RunState) -> None:
        try:
            with self.lock:
                transition(self.conn, self.run_id, state, worker_id=self.worker_id)
        except (LeaseLost, RunNotFound):
            self.control.lease_lost = True

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.beat()  # last progress
        self.conn.close()


def secret_values(model: Any) -> list[str]:
    """Every SecretStr value inside a pydantic model, to scrub from unexpected error messages."""
    if isinstance(model, SecretStr):
        value = model.get_secret_value()
        return [value] if value else []
    if isinstance(model, BaseModel):
        return [s for name in type(model).model_fields for s in secret_values(getattr(model, name))]
    if isinstance(model, dict):
        return [s for item in model.values() for s in secret_values(item)]
    if isinstance(model, list | tuple):
        return [s for item in model for s in secret_values(item)]
    return []


def scrub(message: str, secrets: list[str]) -> str:
    for secret in secrets:
        message = message.replace(secret, "********")
    return message


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
            return Outcome(RunState.FAILED, error=scrub(str(exc), secrets))
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
        row = conn.execute("SELECT state FROM runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        current = RunState(row[0])
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
    return columns


# --------------------------------------------------------------------------------------------------- processes


def run_one(
    conn: psycopg.Connection[Any],
    settings: Any,
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
        connector = load_connector(conn, settings, run.connector_id)
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
    heartbeat = Heartbeat(_dsn(settings), run.run_id, worker_id, options.lease_seconds, reporter, control)
    heartbeat.start()
    logger.info("run %s: started by %s (connector %s, %s)", run.run_id, worker_id, run.connector_id, run.mode.value)
    try:
        retry_window = connector.source.postgres.replication_type.logical_replication.retry_window_seconds
        context = RunContext(run, connector, options, execute, control, reporter, float(retry_window))
        context.others_waiting = lambda: run_store.runs_waiting(conn, [run.run_id, *_not_due(deferred)])
        context.resumed = resumed
        outcome = execute_claimed(context)
    finally:
        heartbeat.stop()
    record_outcome(conn, run.run_id, worker_id, outcome)
    if outcome.retry is not None:
        deferred[run.run_id] = outcome.retry
        logger.info("run %s: back in the queue until its next attempt (other runs were waiting)", run.run_id)
    return outcome


def _not_due(deferred: dict[str, Retry]) -> list[str]:
    now = time.monotonic()
    return [run_id for run_id, retry in deferred.items() if retry.at > now]


def worker_main(settings: Any, options: WorkerOptions, stop: multiprocessing.synchronize.Event, name: str) -> None:
    """Entry point of a worker process: claim and execute runs until asked to stop."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    shutdown = ShutdownFlag(stop)
    execute = resolve_engine(options.engine)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    while not shutdown.is_set():
        try:
            _claim_loop(settings, options, execute, worker_id, shutdown)
        except psycopg.OperationalError as exc:  # state store restarting: wait, reconnect
            logger.warning("%s: state store unavailable: %s", name, exc)
            stop.wait(options.poll_seconds)


def _claim_loop(
    settings: Any, options: WorkerOptions, execute: ExecuteRun, worker_id: str, shutdown: ShutdownFlag
) -> None:
    dsn = _dsn(settings)
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(run_store.RUNS_CHANNEL)))
        deferred: dict[str, Retry] = {}  # runs this worker handed back to wait for their next attempt
        while not shutdown.is_set():
            recover_expired_runs(conn, options.max_recoveries)
            row = run_store.claim_next(conn, worker_id, options.lease_seconds, _not_due(deferred))
            if row is None:
                for run_id in [run_id for run_id, retry in deferred.items() if retry.at <= time.monotonic()]:
                    del deferred[run_id]  # due yet not claimable: cancelled, or taken by another worker
                next_due = min((retry.at for retry in deferred.values()), default=None)
                timeout = options.poll_seconds
                if next_due is not None:
                    timeout = max(0.05, min(timeout, next_due - time.monotonic()))
                for _ in listener.notifies(timeout=timeout, stop_after=1):
                    pass
                continue
            run_one(conn, settings, options, execute, worker_id, row, shutdown, deferred)


class WorkerPool:
    """The run worker processes of one service process, kept alive by a supervisor thread."""

    def __init__(self, settings: Any, options: WorkerOptions, scheduler: Scheduler | None = None) -> None:
        self._settings, self._options, self._scheduler = settings, options, scheduler
        self._mp = multiprocessing.get_context("spawn")  # no fork: the service process has threads and sockets
        self._stop = self._mp.Event()
        self._stopping = threading.Event()
        self._procs = [self._spawn(index) for index in range(options.processes)]
        self._supervisor = threading.Thread(target=self._supervise, name="cdc-run-supervisor", daemon=True)
        self._supervisor.start()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc.pid is not None]

    def _spawn(self, index: int) -> multiprocessing.process.BaseProcess:
        name = f"cdc-run-worker-{index}"
        proc = self._mp.Process(target=worker_main, args=(self._settings, self._options, self._stop, name), name=name)
        proc.start()
        return proc

    def _supervise(self) -> None:
        while not self._stopping.wait(self._options.poll_seconds):
            for index, proc in enumerate(self._procs):
                if not proc.is_alive() and not self._stopping.is_set():
                    logger.warning("%s exited with %s; starting a new one", proc.name, proc.exitcode)
                    self._procs[index] = self._spawn(index)
            if self._scheduler is not None:
                try:
                    self._scheduler.tick()
                except Exception as exc:  # e.g. the state store restarting: next tick reconnects
                    logger.warning("scheduler tick failed: %s", exc)

    def stop(self, timeout: float = 20.0) -> None:
        """Ask workers to stop (their runs go back to the queue), wait, then terminate stragglers."""
        self._stopping.set()
        self._supervisor.join()
        if self._scheduler is not None:
            self._scheduler.close()
        self._stop.set()
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                logger.warning("%s did not stop in time; terminating it", proc.name)
                proc.kill()
                proc.join()


def _dsn(settings: Any) -> str:
    dsn = settings.state_dsn
    return dsn.get_secret_value() if isinstance(dsn, SecretStr) else str(dsn)


def load_connector(conn: psycopg.Connection[Any], settings: Any, connector_id: str) -> Connector | None:
    """The connector with its secrets decrypted, or None if it was deleted meanwhile."""
    row = conn.execute("SELECT document FROM connectors WHERE id = %s", (connector_id,)).fetchone()
    if row is None:
        return None
    return Connector.model_validate(SecretBox(settings.secret_key.get_secret_value()).decrypt(row[0]))


def start_workers(settings: Any, options: WorkerOptions | None = None, *, schedule: bool = True) -> WorkerPool:
    """Called by the service's lifespan; ``handle.stop()`` on shutdown. Also runs this process's scheduler."""
    return WorkerPool(settings, options or WorkerOptions(), Scheduler(_dsn(settings)) if schedule else None)
