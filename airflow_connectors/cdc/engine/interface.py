"""What the service's run worker and the replication engine promise each other.

The worker (``cdc/runs.py`` / ``cdc/worker.py``) owns the run state machine and the state store; the engine owns
the data path. The engine knows nothing of HTTP or the store: it gets a decrypted connector and a run request,
reports progress through a :class:`RunReporter`, polls ``should_stop`` between batches, and returns or raises.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from airflow_connectors.cdc.verification import Verification


class RunMode(enum.StrEnum):
    CATCH_UP = "catch_up"  # apply up to the fence written at run start, then finish
    CONTINUOUS = "continuous"  # keep applying until stopped


class EnginePhase(enum.StrEnum):
    SNAPSHOTTING = "snapshotting"
    STREAMING = "streaming"


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    mode: RunMode = RunMode.CATCH_UP
    # False: no resync; True: re-snapshot every table; a tuple of "schema.table": re-snapshot those only.
    resync: bool | tuple[str, ...] = False
    verify: bool = False  # catch up to a consistent point, then compare every table's source and sink there


@dataclass(slots=True)  # counted per change: slots are quicker to update
class TableCounters:
    rows: int = 0  # rows copied by a snapshot plus changes applied by the stream
    bytes: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0

    def add(self, other: TableCounters) -> None:
        """Accumulate ``other`` into these counters (the one place per-table counters are summed)."""
        self.rows += other.rows
        self.bytes += other.bytes
        self.inserts += other.inserts
        self.updates += other.updates
        self.deletes += other.deletes


@dataclass(frozen=True)
class SinkTable:
    """Where a source table is replicated to (its name decided once, see ``cdc/sink_naming.py``)."""

    target_schema: str
    table: str


@dataclass
class RunResult:
    tables: dict[str, TableCounters] = field(default_factory=dict)  # key: "schema.table" of the source
    sink_tables: dict[str, SinkTable] = field(default_factory=dict)  # same keys: the table each was written to
    start_lsn: str | None = None
    fence_lsn: str | None = None
    applied_lsn: str | None = None
    verification: Verification | None = None


class RunReporter(Protocol):
    """Progress sink; every call is cheap and may be called from any engine thread."""

    def phase(self, phase: EnginePhase) -> None: ...

    def table_progress(self, table: str, counters: TableCounters) -> None: ...

    def positions(
        self, *, start_lsn: str | None = None, fence_lsn: str | None = None, applied_lsn: str | None = None
    ) -> None: ...

    def slot_health(self, *, lag_bytes: int | None, wal_status: str | None) -> None: ...

    def log(self, message: str) -> None: ...


StopCheck = Callable[[], bool]


class EngineError(Exception):
    """A run failure whose message is safe to show users (no secrets) and says what to do."""


class TransientEngineError(EngineError):
    """A connection-level failure worth retrying within ``retry_window_seconds``."""


class SlotLostError(EngineError):
    """The replication slot was dropped or invalidated (``wal_status = 'lost'``): only a resync recovers."""


class VerificationFailed(EngineError):
    """The run caught up, but its verification found tables that differ; ``result`` carries the report."""

    def __init__(self, message: str, result: RunResult) -> None:
        super().__init__(message)
        self.result = result


class RunCancelled(Exception):
    """Raised by the engine when ``should_stop`` returned True; the worker marks the run cancelled."""
