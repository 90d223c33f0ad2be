"""What "waiting for a sync" means, shared by the operators, the sensors and the trigger.

One place decides how progress is logged (state, rows, lag: never a connection detail), how an ended run becomes a
task outcome (failed and cancelled runs are failures, with the run's own error) and when the absolute deadline of a
wait falls (``timeout`` and ``execution_timeout``, which Airflow does not enforce while a task is deferred).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiRateLimited, ApiUnavailable

# Errors a poll may meet after the HTTP layer spent its retry budget: the wait goes on until its deadline.
TRANSIENT_ERRORS = (ApiUnavailable, ApiRateLimited)


def status_from_dict(data: dict[str, Any]) -> SyncStatus:
    """The inverse of :meth:`SyncStatus.to_dict` (a status travels through trigger events as JSON)."""
    return SyncStatus(
        state=SyncState(data["state"]),
        raw_state=str(data["raw_state"]),
        ref=SyncRef.from_dict(data["ref"]),
        message=data.get("message"),
        rows=data.get("rows"),
        lag_bytes=data.get("lag_bytes"),
        lag_seconds=data.get("lag_seconds"),
        tables=tuple(data.get("tables") or ()),
        details=dict(data.get("details") or {}),
    )


def progress_line(status: SyncStatus) -> str:
    """One log line per poll: run, state, rows, lag, tables."""
    ref = status.ref
    parts = [f"connector {ref.connector_id}", f"run {ref.run_id}" if ref.run_id else "sync"]
    text = " ".join(parts) + f": {status.state.value} ({status.raw_state})"
    if status.rows is not None:
        text += f", rows {status.rows}"
    if status.lag_bytes is not None:
        text += f", lag {status.lag_bytes} bytes"
    if status.lag_seconds is not None:
        text += f", lag {status.lag_seconds:.1f} s"
    if status.tables:
        text += f", {len(status.tables)} tables"
    return text


def outcome_error(status: SyncStatus, *, min_rows: int | None = None, max_lag_bytes: int | None = None) -> str | None:
    """Why an ended run fails the task, or ``None`` when it succeeds (and meets the optional assertions)."""
    ref = status.ref
    what = f"connector {ref.connector_id} run {ref.run_id}" if ref.run_id else f"connector {ref.connector_id} sync"
    if status.state is SyncState.FAILED:
        return f"{what} failed: {status.message or status.raw_state}"
    if status.state is SyncState.CANCELLED:
        return f"{what} was cancelled" + (f": {status.message}" if status.message else "")
    if status.state is SyncState.RUNNING:
        return f"{what} is still running"
    if min_rows is not None and (status.rows is None or status.rows < min_rows):
        return f"{what} moved {status.rows} rows, fewer than min_rows={min_rows}"
    if max_lag_bytes is not None and status.lag_bytes is not None and status.lag_bytes > max_lag_bytes:
        return f"{what} ended {status.lag_bytes} bytes behind, more than max_lag_bytes={max_lag_bytes}"
    return None


def as_seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else (None if value is None else float(value))


def wait_deadline(
    *, timeout: float | timedelta | None, execution_timeout: timedelta | None, started_at: datetime | None
) -> float | None:
    """The absolute deadline (epoch seconds) of a wait starting now: the earlier of ``now + timeout`` and the
    task's start plus its ``execution_timeout``."""
    candidates = []
    if (seconds := as_seconds(timeout)) is not None:
        candidates.append(time.time() + seconds)
    if execution_timeout is not None:
        start = started_at.timestamp() if started_at is not None else time.time()
        candidates.append(start + execution_timeout.total_seconds())
    return min(candidates) if candidates else None


# Extra time Airflow gives a deferred task past the trigger's own deadline: the trigger (which cancels an owned run
# and says why) fires first; Airflow's deferral timeout is only the safety net.
DEFER_GRACE = timedelta(minutes=2)


def defer_timeout(deadline: float | None) -> timedelta | None:
    return None if deadline is None else timedelta(seconds=max(deadline - time.time(), 0)) + DEFER_GRACE
