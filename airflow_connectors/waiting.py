"""When a wait for a sync polls, and when it ends: the time rules shared by the operators, sensors and trigger.

Where a sync is waited for: :meth:`ConnectorHook.wait_for_sync <airflow_connectors.hooks.base.ConnectorHook.
wait_for_sync>` (operators, blocking) and :class:`~airflow_connectors.triggers.sync.SyncTrigger` (deferred), both on
:func:`poll_schedule`; a sensor's ``poke`` is one :meth:`~airflow_connectors.hooks.base.ConnectorHook.poll_sync`.
How an ended run becomes a task outcome is :meth:`SyncStatus.failure
<airflow_connectors.hooks.base.SyncStatus.failure>`. The deadline is absolute (``timeout`` and
``execution_timeout``, which Airflow does not enforce while a task is deferred). Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

# Extra time Airflow gives a deferred task past the trigger's own deadline: the trigger (which cancels an owned run
# and says why) fires first; Airflow's deferral timeout is only the safety net.
DEFER_GRACE = timedelta(minutes=2)


def poll_schedule(deadline: float | None, poll_interval: float) -> Iterator[float]:
    """Seconds to sleep before each poll: none before the first, then ``poll_interval``, the last pause cut short
    so a final poll lands on the deadline (epoch seconds). Ends once the deadline has passed."""
    yield 0.0
    while True:
        remaining = None if deadline is None else deadline - time.time()
        if remaining is not None and remaining <= 0:
            return
        yield poll_interval if remaining is None else min(poll_interval, remaining)


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else (None if value is None else float(value))


def wait_deadline(
    *, timeout: float | timedelta | None, execution_timeout: timedelta | None, started_at: datetime | None
) -> float | None:
    """The absolute deadline (epoch seconds) of a wait starting now: the earlier of ``now + timeout`` and the
    task's start plus its ``execution_timeout``."""
    candidates = []
    if (seconds := _seconds(timeout)) is not None:
        candidates.append(time.time() + seconds)
    if execution_timeout is not None:
        start = started_at.timestamp() if started_at is not None else time.time()
        candidates.append(start + execution_timeout.total_seconds())
    return min(candidates) if candidates else None


def defer_timeout(deadline: float | None) -> timedelta | None:
    return None if deadline is None else timedelta(seconds=max(deadline - time.time(), 0)) + DEFER_GRACE
