"""Run workers: separate processes that execute queued runs, so a slow or crashing run never blocks the API.

Each worker claims a run with ``FOR UPDATE SKIP LOCKED`` (so two workers, in one service process or many, never
take the same run) and holds a lease on it that a heartbeat thread renews (:mod:`.heartbeat`); expired leases are
recovered by any worker (:mod:`.recovery`); one claimed run is executed by :mod:`.execute`.
"""

from __future__ import annotations

import gc
import importlib
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg import sql

from airflow_connectors.cdc.connectors.secrets import SecretBox
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.execute import ExecuteRun, Retry, not_due, run_one
from airflow_connectors.cdc.runs.heartbeat import ShutdownFlag
from airflow_connectors.cdc.runs.recovery import recover_expired_runs
from airflow_connectors.cdc.settings import DEFAULT_ENGINE, ServiceSettings

logger = logging.getLogger(__name__)


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


def worker_main(
    settings: ServiceSettings, options: WorkerOptions, stop: multiprocessing.synchronize.Event, name: str
) -> None:
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
    settings: ServiceSettings, options: WorkerOptions, execute: ExecuteRun, worker_id: str, shutdown: ShutdownFlag
) -> None:
    dsn = settings.dsn()
    secrets = SecretBox(settings.secret_key.get_secret_value())
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(run_store.RUNS_CHANNEL)))
        deferred: dict[str, Retry] = {}  # runs this worker handed back to wait for their next attempt
        while not shutdown.is_set():
            recover_expired_runs(conn, options.max_recoveries)
            row = run_store.claim_next(conn, worker_id, options.lease_seconds, not_due(deferred))
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
            run_one(conn, dsn, secrets, options, execute, worker_id, row, shutdown, deferred)
            # A run's stream is a web of objects (threads, callbacks) that refcounting alone does not free; an idle
            # worker would keep a big transaction's batches until some later collection. Freed now, it stays small.
            gc.collect()


class WorkerPool:
    """The run worker processes of one service process, kept alive by a supervisor thread."""

    def __init__(self, settings: ServiceSettings, options: WorkerOptions) -> None:
        self._settings, self._options = settings, options
        self._mp = multiprocessing.get_context("spawn")  # no fork: the service process has threads and sockets
        self._stop = self._mp.Event()
        self._stopping = threading.Event()
        self._procs = [self._spawn(index) for index in range(options.processes)]
        self._supervisor = threading.Thread(target=self._supervise, name="cdc-run-supervisor", daemon=True)
        self._supervisor.start()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc.pid is not None]

    @property
    def alive(self) -> int:
        """Worker processes running now (the supervisor replaces a dead one within a poll interval)."""
        return sum(proc.is_alive() for proc in self._procs)

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

    def stop(self, timeout: float = 20.0) -> None:
        """Ask workers to stop (their runs go back to the queue), wait, then terminate stragglers."""
        self._stopping.set()
        self._supervisor.join()
        self._stop.set()
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                logger.warning("%s did not stop in time; terminating it", proc.name)
                proc.kill()
                proc.join()


def start_workers(settings: ServiceSettings, options: WorkerOptions | None = None) -> WorkerPool:
    """Called by the service's lifespan; ``handle.stop()`` on shutdown."""
    return WorkerPool(settings, options or WorkerOptions())
