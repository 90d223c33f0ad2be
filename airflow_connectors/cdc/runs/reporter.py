"""The engine's progress reporter for one run: phases go to the store at once, counters in throttled batches.

Phase changes are rare and users wait for them, so they are applied immediately through the state machine.
Counters arrive per batch (thousands a second on a busy stream), so they are only kept in memory here and written
by the worker's heartbeat (:meth:`take_progress`), and logged per table at most every ``log_every`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from airflow_connectors.cdc.engine.interface import EnginePhase, TableCounters
from airflow_connectors.cdc.runs.state_machine import IllegalTransition, RunState

logger = logging.getLogger(__name__)

ApplyPhase = Callable[[RunState], None]


class StoreReporter:
    """Implements :class:`~airflow_connectors.cdc.engine.interface.RunReporter`; thread-safe."""

    def __init__(self, run_id: str, apply_phase: ApplyPhase, log_every: float = 10.0) -> None:
        self.run_id = run_id
        self.updates = 0  # grows on every progress report: lets the worker see that an attempt made headway
        self._apply_phase = apply_phase
        self._log_every = log_every
        self._mutex = threading.Lock()
        self._tables: dict[str, dict[str, int]] = {}
        self._fields: dict[str, Any] = {}
        self._dirty = False
        self._logged: dict[str, tuple[float, int]] = {}  # table -> (when, rows) of its last progress log line

    def phase(self, phase: EnginePhase) -> None:
        try:
            self._apply_phase(RunState(phase.value))
        except IllegalTransition as exc:  # e.g. a partial resync snapshotting while streaming: keep the state
            logger.debug("run %s: phase %s not applied: %s", self.run_id, phase.value, exc)
        logger.info("run %s: %s", self.run_id, phase.value)

    def table_progress(self, table: str, counters: TableCounters) -> None:
        with self._mutex:
            self._tables[table] = asdict(counters)
            self._dirty = True
            self.updates += 1
        self._log_table(table, counters.rows)

    def positions(
        self, *, start_lsn: str | None = None, fence_lsn: str | None = None, applied_lsn: str | None = None
    ) -> None:
        self._set(start_lsn=start_lsn, fence_lsn=fence_lsn, applied_lsn=applied_lsn)

    def slot_health(self, *, lag_bytes: int | None, wal_status: str | None) -> None:
        self._set(lag_bytes=lag_bytes, wal_status=wal_status)

    def log(self, message: str) -> None:
        logger.info("run %s: %s", self.run_id, message)

    def take_progress(self) -> dict[str, Any]:
        """What changed since the last call, as ``runs`` columns (empty when nothing did)."""
        with self._mutex:
            if not self._dirty:
                return {}
            self._dirty = False
            progress = dict(self._fields)
            if self._tables:
                progress["tables"] = {name: dict(values) for name, values in self._tables.items()}
                progress["rows_total"] = sum(values["rows"] for values in self._tables.values())
            return progress

    def _set(self, **values: Any) -> None:
        given = {key: value for key, value in values.items() if value is not None}
        if not given:
            return
        with self._mutex:
            self._fields.update(given)
            self._dirty = True
            self.updates += 1

    def _log_table(self, table: str, rows: int) -> None:
        now = time.monotonic()
        with self._mutex:
            when, before = self._logged.get(table, (None, 0))
            if when is not None and now - when < self._log_every:
                return
            self._logged[table] = (now, rows)
        rate = f", {(rows - before) / (now - when):.0f} rows/s" if when is not None else ""
        logger.info("run %s: table %s: %d rows%s", self.run_id, table, rows, rate)
