"""Starts runs for connectors with a ``schedule`` (interval or cron + timezone).

Every service process runs a scheduler tick, but only the one holding a session-level advisory lock acts on it, so
a connector is never scheduled twice; if that process dies its session ends, the lock is freed and another process
takes over at its next tick. The one-active-run index makes a run already in progress simply skip the slot.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from croniter import croniter

from airflow_connectors.cdc import run_store
from airflow_connectors.cdc.run_models import RunCreate

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the scheduling leader ("cdc-sched" as an int8).
LEADER_LOCK_KEY = 0x6364632D7363686564


def next_due(schedule: Any, last_run_at: datetime | None, created_at: datetime) -> datetime | None:
    """When the connector's next scheduled run is due, or None for a manual connector.

    An interval schedule runs at once for a connector that never ran, then ``interval_seconds`` after the start
    of its last run (manual runs count, so a manual run postpones the next scheduled one). A cron schedule fires
    at the first cron time, in the schedule's timezone, after the last run (or the connector's creation).
    """
    if schedule is None:
        return None
    if schedule.interval_seconds is not None:
        if last_run_at is None:
            return created_at
        return last_run_at + timedelta(seconds=schedule.interval_seconds)
    if schedule.cron is not None:
        base = (last_run_at or created_at).astimezone(ZoneInfo(schedule.timezone))
        return croniter(schedule.cron, base).get_next(datetime).astimezone(UTC)
    return None
