"""Doubles of the ENGINE (``execute_run``'s signature) for testing the worker and the state machine.

Spawned worker processes import this module by name (``tests.cdc.runs.fake_engines:execute_run``). The behaviour
is picked per connector from its name, ``fake:<behaviour>``, and every execution is appended to
``$CDC_FAKE_ENGINE_DIR/executions.log`` as ``<run_id> <pid>`` so tests can count executions across processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from airflow_connectors.cdc.engine.interface import (
    EnginePhase,
    RunCancelled,
    RunReporter,
    RunRequest,
    RunResult,
    SlotLostError,
    StopCheck,
    TableCounters,
    TransientEngineError,
)

_failures: dict[str, int] = {}  # run_id -> transient failures raised so far (per process)


def control_dir() -> Path:
    return Path(os.environ["CDC_FAKE_ENGINE_DIR"])


def executions() -> list[tuple[str, int]]:
    log = control_dir() / "executions.log"
    if not log.exists():
        return []
    return [(run_id, int(pid)) for run_id, pid in (line.split() for line in log.read_text().splitlines())]


def _succeed(request: RunRequest, reporter: RunReporter) -> RunResult:
    counters = TableCounters(rows=10, bytes=100, inserts=10)
    reporter.phase(EnginePhase.SNAPSHOTTING)
    reporter.table_progress("public.t", counters)
    reporter.positions(start_lsn="0/10", fence_lsn="0/20")
    reporter.phase(EnginePhase.STREAMING)
    reporter.slot_health(lag_bytes=0, wal_status="reserved")
    return RunResult(tables={"public.t": counters}, start_lsn="0/10", fence_lsn="0/20", applied_lsn="0/20")


def _block_until_stopped(reporter: RunReporter, should_stop: StopCheck) -> None:
    reporter.phase(EnginePhase.SNAPSHOTTING)
    while not should_stop():
        time.sleep(0.02)
    raise RunCancelled()


def execute_run(connector: Any, request: RunRequest, reporter: RunReporter, should_stop: StopCheck) -> RunResult:
    behaviour = connector.name.split(":", 1)[1]
    with open(control_dir() / "executions.log", "a") as log:
        log.write(f"{request.run_id} {os.getpid()}\n")
    if behaviour == "ok":
        return _succeed(request, reporter)
    if behaviour == "ok-slow":
        time.sleep(0.2)
        return _succeed(request, reporter)
    if behaviour == "block":
        _block_until_stopped(reporter, should_stop)
    if behaviour == "die-once":
        marker = control_dir() / f"{request.run_id}.started"
        if not marker.exists():
            reporter.phase(EnginePhase.SNAPSHOTTING)
            marker.write_text(str(os.getpid()))
            while True:  # ignores should_stop: only SIGKILL ends this attempt
                time.sleep(0.05)
        return _succeed(request, reporter)
    if behaviour.startswith("flaky-"):
        if _failures.get(request.run_id, 0) < int(behaviour.removeprefix("flaky-")):
            _failures[request.run_id] = _failures.get(request.run_id, 0) + 1
            raise TransientEngineError("sink unreachable: connection refused")
        return _succeed(request, reporter)
    if behaviour == "transient":
        _failures[request.run_id] = _failures.get(request.run_id, 0) + 1
        raise TransientEngineError(f"source unreachable (attempt {_failures[request.run_id]})")
    if behaviour == "slot-lost":
        raise SlotLostError("replication slot is lost (wal_status = 'lost'); start a run with resync=true")
    if behaviour == "crash":
        raise RuntimeError(
            f"bug while connecting with {connector.source.postgres.connection.password.get_secret_value()}"
        )
    raise AssertionError(f"unknown fake engine behaviour {behaviour!r}")
