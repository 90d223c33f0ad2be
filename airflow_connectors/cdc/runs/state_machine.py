"""The run state machine: the one place that changes a run's ``state``.

Every transition locks the run row (``SELECT ... FOR UPDATE``) and is checked against :data:`ALLOWED`, so the API,
the workers, the lease recovery and the scheduler, in any number of service processes, cannot race a run into an
impossible state (a cancelled run that later "succeeds", a finished run re-queued, ...).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


class RunState(enum.StrEnum):
    QUEUED = "queued"
    SNAPSHOTTING = "snapshotting"
    STREAMING = "streaming"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({RunState.QUEUED, RunState.SNAPSHOTTING, RunState.STREAMING})
TERMINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})

# Forward only, except that a running run may go back to ``queued`` when its worker stopped or died (it is then
# executed again from the sink checkpoint). Terminal states are final.
ALLOWED: Mapping[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.SNAPSHOTTING, RunState.STREAMING, RunState.FAILED, RunState.CANCELLED}),
    RunState.SNAPSHOTTING: frozenset(
        {RunState.STREAMING, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.QUEUED}
    ),
    RunState.STREAMING: frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.QUEUED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}

# Columns a transition may set together with the state (progress written at the same moment).
_PROGRESS_COLUMNS = frozenset(
    {
        "start_lsn",
        "fence_lsn",
        "applied_lsn",
        "tables",
        "rows_total",
        "lag_bytes",
        "wal_status",
        "error",
        "verification",
        "sink_tables",
    }
)
_JSON_COLUMNS = frozenset({"tables", "verification", "sink_tables"})


class RunNotFound(LookupError):
    """No run with that id."""


class IllegalTransition(ValueError):
    """The requested state change is not in :data:`ALLOWED`."""

    def __init__(self, run_id: str, current: RunState, new: RunState) -> None:
        super().__init__(f"run {run_id}: illegal transition {current.value} -> {new.value}")
        self.run_id, self.current, self.new = run_id, current, new


class LeaseLost(RuntimeError):
    """The caller's worker no longer owns the run (its lease expired and the run was recovered elsewhere)."""


class RunFinished(ValueError):
    """Cancel asked of a run that already succeeded or failed (a cancelled run may be cancelled again)."""

    def __init__(self, run_id: str, state: RunState) -> None:
        super().__init__(f"run {run_id} already {state.value}")
        self.run_id, self.state = run_id, state


def check_cancellable(run_id: str, state: RunState) -> None:
    """Cancelling is idempotent on a cancelled run; a succeeded or failed run keeps its outcome."""
    if state in (RunState.SUCCEEDED, RunState.FAILED):
        raise RunFinished(run_id, state)


def check_transition(run_id: str, current: RunState, new: RunState) -> None:
    if new not in ALLOWED[current]:
        raise IllegalTransition(run_id, current, new)


def transition(
    conn: psycopg.Connection[Any],
    run_id: str,
    new: RunState,
    *,
    worker_id: str | None = None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move ``run_id`` to ``new`` under a row lock; returns the updated row.

    ``worker_id`` (workers pass theirs) makes the change conditional on still holding the run's lease. Entering
    ``queued`` or a terminal state releases the lease; entering a terminal state stamps ``finished_at``.
    """
    extra = dict(changes or {})
    unknown = set(extra) - _PROGRESS_COLUMNS
    if unknown:
        raise ValueError(f"transition cannot set {sorted(unknown)}")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT state, worker_id FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        if worker_id is not None and row["worker_id"] != worker_id:
            raise LeaseLost(f"run {run_id} is no longer leased by {worker_id}")
        check_transition(run_id, RunState(row["state"]), new)
        assignments: list[sql.Composable] = [sql.SQL("state = %(state)s")]
        params: dict[str, Any] = {"state": new.value, "run_id": run_id}
        if new in TERMINAL_STATES:
            assignments.append(sql.SQL("finished_at = now()"))
        if new in TERMINAL_STATES or new is RunState.QUEUED:
            assignments.append(sql.SQL("worker_id = NULL, lease_expires_at = NULL"))
        for column, value in extra.items():
            assignments.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = json.dumps(value) if column in _JSON_COLUMNS else value
        query = sql.SQL("UPDATE runs SET {} WHERE run_id = %(run_id)s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        )
        updated = cur.execute(query, params).fetchone()
    assert updated is not None
    return updated
