"""Starts runs for connectors with a ``schedule`` (interval or cron + timezone).

Every service process runs a scheduler tick, but only the one holding a session-level advisory lock acts on it, so
a connector is never scheduled twice; if that process dies its session ends, the lock is freed and another process
takes over at its next tick. The one-active-run index makes a run already in progress simply skip the slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from croniter import croniter

from airflow_connectors.cdc.connectors.models import Schedule
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import RunCreate

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the scheduling leader ("cdcsched" as an int8).
LEADER_LOCK_KEY = 0x6364637363686564


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


@dataclass(frozen=True)
class Candidate:
    connector_id: str
    schedule: Schedule
    last_run_at: datetime | None
    created_at: datetime


def scheduled_connectors(conn: psycopg.Connection[Any]) -> Iterator[Candidate]:
    """Connectors with a schedule that may run now (not disabled, not paused), with their last run's start."""
    rows = conn.execute(
        "SELECT c.id, c.document->'schedule', c.created_at,"
        " (SELECT max(coalesce(r.started_at, r.created_at)) FROM runs r WHERE r.connector_id = c.id)"
        " FROM connectors c WHERE jsonb_typeof(c.document->'schedule') = 'object' AND NOT c.paused"
        " AND NOT coalesce((c.document->>'disabled')::boolean, false) ORDER BY c.seq"
    ).fetchall()
    for connector_id, schedule, created_at, last_run_at in rows:
        yield Candidate(connector_id, Schedule.model_validate(schedule), last_run_at, created_at)


class Scheduler:
    """One per service process; :meth:`tick` is called every second or so by :class:`SchedulerThread`."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None
        self._leader = False

    def tick(self, now: datetime | None = None) -> list[str]:
        """Queue the runs that are due, if this process is the scheduling leader; returns their ids."""
        try:
            return self._tick(now or datetime.now(UTC))
        except psycopg.OperationalError:
            self.close()  # the lock went with the session; whoever reconnects first leads next
            raise

    def _tick(self, now: datetime) -> list[str]:
        if self._conn is None:
            self._conn = psycopg.connect(self._dsn, autocommit=True)
        conn = self._conn
        if not self._leader:  # the lock is held by our session until it ends: take it once
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK_KEY,)).fetchone()
            self._leader = bool(got and got[0])
            if not self._leader:
                return []
        started = []
        for candidate in scheduled_connectors(conn):
            due = next_due(candidate.schedule, candidate.last_run_at, candidate.created_at)
            if due is None or due > now:
                continue
            try:
                row = run_store.insert_run(conn, candidate.connector_id, RunCreate(), "schedule")
            except run_store.RunActive:
                continue  # still running from before: this slot is skipped
            logger.info("connector %s: scheduled run %s", candidate.connector_id, row["run_id"])
            started.append(str(row["run_id"]))
        return started

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._leader = False


class SchedulerThread(threading.Thread):
    """Ticks the scheduler about once a second in every service process, with or without run workers: an
    API-only process schedules too (the leader lock makes one process per store do it)."""

    def __init__(self, dsn: str, interval: float = 1.0) -> None:
        super().__init__(name="cdc-scheduler", daemon=True)
        self._scheduler = Scheduler(dsn)
        self._interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self._scheduler.tick()
            except Exception as exc:  # e.g. the state store restarting: next tick reconnects
                logger.warning("scheduler tick failed: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        self.join()
        self._scheduler.close()
