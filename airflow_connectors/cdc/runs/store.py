"""Every SQL statement on the ``runs`` table: create, read, page, lease. State changes go through
:mod:`.state_machine` only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row

from airflow_connectors.cdc.runs.models import RunCreate
from airflow_connectors.cdc.runs.state_machine import ACTIVE_STATES, RunNotFound, RunState, transition

# Workers LISTEN here; a new queued run is announced so an idle worker picks it up at once.
RUNS_CHANNEL = "cdc_runs"
_ACTIVE = sorted(state.value for state in ACTIVE_STATES)


class RunActive(Exception):
    """The connector already has an active run (enforced by a unique index, so it holds across processes)."""

    def __init__(self, connector_id: str, run_id: str) -> None:
        super().__init__(f"connector {connector_id} already has an active run: {run_id}")
        self.connector_id, self.run_id = connector_id, run_id


def insert_run(conn: psycopg.Connection[Any], connector_id: str, body: RunCreate, trigger: str) -> dict[str, Any]:
    """Queue a run, or raise :class:`RunActive` carrying the active run's id."""
    for _ in range(3):  # the active run may finish between our failed insert and the lookup: try again
        try:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    "INSERT INTO runs (run_id, connector_id, mode, resync, verify, trigger)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                    (str(uuid.uuid4()), connector_id, body.mode.value, json.dumps(body.resync), body.verify, trigger),
                ).fetchone()
                cur.execute("SELECT pg_notify(%s, %s)", (RUNS_CHANNEL, connector_id))
            assert row is not None
            return row
        except errors.UniqueViolation:
            active = active_run_id(conn, connector_id)
            if active is not None:
                raise RunActive(connector_id, active) from None
    raise RuntimeError(f"connector {connector_id}: could not queue a run (active runs kept changing)")


def active_run_id(conn: psycopg.Connection[Any], connector_id: str) -> str | None:
    row = conn.execute(
        "SELECT run_id FROM runs WHERE connector_id = %s AND state = ANY(%s)", (connector_id, _ACTIVE)
    ).fetchone()
    return row[0] if row else None


def current_state(conn: psycopg.Connection[Any], run_id: str) -> RunState:
    row = conn.execute("SELECT state FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(run_id)
    return RunState(row[0])


def get_run(conn: psycopg.Connection[Any], connector_id: str, run_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM runs WHERE connector_id = %s AND run_id = %s", (connector_id, run_id)
        ).fetchone()


def parse_cursor(cursor: str | None) -> int | None:
    """Cursors are opaque to clients; inside they are the ``seq`` of the last run of the previous page."""
    if cursor is None:
        return None
    # ASCII digits only (str.isdigit also takes "²"), and within a bigint: anything else is not one of ours.
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise ValueError("cursor: not a cursor returned by this API")
    return int(cursor)


def list_runs(
    conn: psycopg.Connection[Any], connector_id: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the connector's runs, newest first, and the cursor of the next page (None at the end)."""
    after = parse_cursor(cursor)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM runs WHERE connector_id = %s AND (%s::bigint IS NULL OR seq < %s)"
            " ORDER BY seq DESC LIMIT %s",
            (connector_id, after, after, limit + 1),
        ).fetchall()
    if len(rows) > limit:
        return rows[:limit], str(rows[limit - 1]["seq"])
    return rows, None


def latest_run_summary(conn: psycopg.Connection[Any], connector_id: str) -> dict[str, Any] | None:
    """Run fields of the connector status: ``{"last_run": {run_id, state, finished_at}, "runs_total",
    "runs_failed", "lag_bytes", "wal_status"}`` (the last two as last reported by a run), or None before any run."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT r.run_id, r.state, r.finished_at,"
            " (SELECT count(*) FROM runs WHERE connector_id = %(c)s) AS runs_total,"
            " (SELECT count(*) FROM runs WHERE connector_id = %(c)s AND state = 'failed') AS runs_failed,"
            " (SELECT lag_bytes FROM runs WHERE connector_id = %(c)s AND wal_status IS NOT NULL"
            "  ORDER BY seq DESC LIMIT 1) AS lag_bytes,"
            " (SELECT wal_status FROM runs WHERE connector_id = %(c)s AND wal_status IS NOT NULL"
            "  ORDER BY seq DESC LIMIT 1) AS wal_status"
            " FROM runs r WHERE r.connector_id = %(c)s ORDER BY r.seq DESC LIMIT 1",
            {"c": connector_id},
        ).fetchone()
    if row is None:
        return None
    finished = row["finished_at"]
    return {
        "last_run": {
            "run_id": row["run_id"],
            "state": row["state"],
            "finished_at": finished.isoformat() if finished else None,
        },
        "runs_total": row["runs_total"],
        "runs_failed": row["runs_failed"],
        "lag_bytes": row["lag_bytes"],
        "wal_status": row["wal_status"],
    }


def request_cancel(conn: psycopg.Connection[Any], run_id: str) -> dict[str, Any]:
    """Cancel an active run: a queued one nobody claimed at once, otherwise its worker stops at its next
    heartbeat and records ``cancelled``. Finished runs are left as they are. Returns the run."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        if row["state"] == RunState.QUEUED and row["worker_id"] is None:
            row = transition(conn, run_id, RunState.CANCELLED)
        elif RunState(row["state"]) in ACTIVE_STATES:
            row = cur.execute(
                "UPDATE runs SET cancel_requested = true WHERE run_id = %s RETURNING *", (run_id,)
            ).fetchone()
    assert row is not None
    return row


def cancel_active_runs(conn: psycopg.Connection[Any], connector_id: str) -> str | None:
    """Cancel the connector's active run, if any (pause, disable, delete); returns its id."""
    run_id = active_run_id(conn, connector_id)
    if run_id is not None:
        request_cancel(conn, run_id)
    return run_id


def claim_next(
    conn: psycopg.Connection[Any], worker_id: str, lease_seconds: float, skip: Sequence[str] = ()
) -> dict[str, Any] | None:
    """Lease the oldest queued, unleased run (not in ``skip``) to ``worker_id``; SKIP LOCKED lets many workers claim
    at once."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE runs SET worker_id = %(w)s, lease_expires_at = now() + make_interval(secs => %(lease)s),"
            " started_at = coalesce(started_at, now())"
            " WHERE run_id = (SELECT run_id FROM runs WHERE state = 'queued' AND worker_id IS NULL"
            "                 AND run_id <> ALL(%(skip)s::text[]) ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
            " AND state = 'queued' AND worker_id IS NULL RETURNING *",
            {"w": worker_id, "lease": lease_seconds, "skip": list(skip)},
        ).fetchone()


def runs_waiting(conn: psycopg.Connection[Any], skip: Sequence[str] = ()) -> bool:
    """Whether a queued run (not in ``skip``) waits for a worker."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE state = 'queued' AND worker_id IS NULL AND run_id <> ALL(%s::text[]))",
        (list(skip),),
    ).fetchone()
    return bool(row and row[0])


def heartbeat(
    conn: psycopg.Connection[Any], run_id: str, worker_id: str, lease_seconds: float, progress: dict[str, Any]
) -> bool | None:
    """Renew the lease and write throttled progress in one statement.

    Returns whether a cancel was requested, or None when the lease is lost (the run is no longer ours).
    """
    row = conn.execute(
        "UPDATE runs SET lease_expires_at = now() + make_interval(secs => %(lease)s),"
        " tables = coalesce(%(tables)s::jsonb, tables),"
        " rows_total = coalesce(%(rows_total)s, rows_total),"
        " start_lsn = coalesce(%(start_lsn)s, start_lsn),"
        " fence_lsn = coalesce(%(fence_lsn)s, fence_lsn),"
        " applied_lsn = coalesce(%(applied_lsn)s, applied_lsn),"
        " lag_bytes = coalesce(%(lag_bytes)s, lag_bytes),"
        " wal_status = coalesce(%(wal_status)s, wal_status)"
        " WHERE run_id = %(run_id)s AND worker_id = %(w)s RETURNING cancel_requested",
        {
            "lease": lease_seconds,
            "run_id": run_id,
            "w": worker_id,
            "tables": json.dumps(progress["tables"]) if progress.get("tables") is not None else None,
            **{
                key: progress.get(key)
                for key in ("rows_total", "start_lsn", "fence_lsn", "applied_lsn", "lag_bytes", "wal_status")
            },
        },
    ).fetchone()
    return None if row is None else bool(row[0])


def release_lease(conn: psycopg.Connection[Any], run_id: str, worker_id: str) -> None:
    """Give a still-queued run back to the pool (its worker stopped before the engine reported a phase)."""
    conn.execute(
        "UPDATE runs SET worker_id = NULL, lease_expires_at = NULL WHERE run_id = %s AND worker_id = %s",
        (run_id, worker_id),
    )


def count_recovery(conn: psycopg.Connection[Any], run_id: str) -> None:
    """Note that the run's worker died; too many deaths fail the run instead of looping forever."""
    conn.execute(
        "UPDATE runs SET recoveries = recoveries + 1, worker_id = NULL, lease_expires_at = NULL WHERE run_id = %s",
        (run_id,),
    )


def lock_expired_leases(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Inside the caller's transaction: lock runs whose worker stopped renewing its lease (it died)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT run_id, state, recoveries, cancel_requested FROM runs"
            " WHERE worker_id IS NOT NULL AND lease_expires_at < now() FOR UPDATE SKIP LOCKED"
        ).fetchall()
