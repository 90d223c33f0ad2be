"""Why a running run should stop, and the heartbeat thread that renews its lease and picks up cancel requests."""

from __future__ import annotations

import logging
import multiprocessing.synchronize
import os
import threading
import time

import psycopg

from airflow_connectors.cdc import io_deadline
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.reporter import StoreReporter
from airflow_connectors.cdc.runs.state_machine import LeaseLost, RunNotFound, RunState, transition

logger = logging.getLogger(__name__)

# After a stop (cancel, deadline, lost lease, shutdown) the engine gets this long to notice between batches; then its
# connections are broken under it, so a stop takes effect within ~10 s whatever the source or sink does.
STOP_GRACE_SECONDS = 5.0


class ShutdownFlag:
    """Set when the worker process should stop: the pool asked, or the service process that started it died
    (then the worker stops too, instead of running on as an orphan nobody supervises)."""

    def __init__(self, event: multiprocessing.synchronize.Event) -> None:
        self.event = event
        self.parent = os.getppid()

    def is_set(self) -> bool:
        return self.event.is_set() or os.getppid() != self.parent


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
