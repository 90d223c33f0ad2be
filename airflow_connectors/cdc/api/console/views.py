"""What the console pages show, read from the state store through the same functions the API uses.

Views are plain data (no HTML): the templates decide the layout and Jinja escapes every value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from airflow_connectors.cdc.api.deps import connector_status
from airflow_connectors.cdc.connectors.models import Connector, ConnectorStatus, PostgresConnection
from airflow_connectors.cdc.connectors.store import ConnectorRecord, ConnectorStore
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import Run
from airflow_connectors.cdc.runs.scheduler import next_due
from airflow_connectors.cdc.runs.state_machine import ACTIVE_STATES

CONNECTOR_STATES = ("idle", "running", "paused", "disabled")
RUNS_PER_PAGE = 20
CHART_RUNS = 30  # runs drawn in the connector's charts


def endpoint(connection: PostgresConnection, schema: str | None = None) -> str:
    """``host:port/database[/schema]``: where data comes from or goes to (never credentials)."""
    where = f"{connection.host}:{connection.port}/{connection.database}"
    return f"{where}/{schema}" if schema else where


def schedule_text(connector: Connector) -> str:
    schedule = connector.schedule
    if schedule is None:
        return "manual"
    if schedule.interval_seconds is not None:
        return f"every {duration_text(schedule.interval_seconds)}"
    return f"cron {schedule.cron} ({schedule.timezone})"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def run_duration(run: Run, now: datetime | None = None) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or now or datetime.now(UTC)
    return max((end - run.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class ConnectorRow:
    """One line of the connectors list."""

    record: ConnectorRecord
    status: ConnectorStatus
    last_run: Run | None
    next_due: datetime | None

    @property
    def connector(self) -> Connector:
        return self.record.connector


def _latest_run(conn: psycopg.Connection[Any], connector_id: str) -> Run | None:
    rows, _ = run_store.list_runs(conn, connector_id, 1, None)
    return Run.from_row(rows[0]) if rows else None


def _row(conn: psycopg.Connection[Any], record: ConnectorRecord, *, live_slot: bool) -> ConnectorRow:
    status = connector_status(conn, record, live_slot=live_slot)
    last = _latest_run(conn, record.connector.id)
    due = None
    if status.state not in ("paused", "disabled"):
        last_at = (last.started_at or last.created_at) if last else None
        due = next_due(record.connector.schedule, last_at, record.created_at)
    return ConnectorRow(record, status, last, due)


def connector_rows(
    store: ConnectorStore, conn: psycopg.Connection[Any], *, state: str | None, name: str | None
) -> list[ConnectorRow]:
    """Every connector (creation order) in ``state`` whose name or id contains ``name`` (case-insensitive)."""
    rows: list[ConnectorRow] = []
    cursor: int | None = None
    needle = (name or "").strip().casefold()
    while True:
        records, cursor = store.list(conn, name=None, limit=200, cursor=cursor)
        for record in records:
            label = f"{record.connector.name or ''} {record.connector.id}".casefold()
            if needle and needle not in label:
                continue
            row = _row(conn, record, live_slot=False)
            if state is None or row.status.state == state:
                rows.append(row)
        if cursor is None:
            return rows


@dataclass(frozen=True)
class TableTotal:
    """A source table and what all runs of the connector applied to it."""

    name: str
    rows: int = 0
    bytes: int = 0
    runs: int = 0


def table_totals(conn: psycopg.Connection[Any], record: ConnectorRecord) -> list[TableTotal]:
    """Tables the runs reported (with their totals), plus tables the catalog names that no run reached yet."""
    with conn.cursor(row_factory=dict_row) as cur:
        reported = cur.execute(
            "SELECT t.key AS name, sum((t.value->>'rows')::bigint) AS rows, sum((t.value->>'bytes')::bigint) AS bytes,"
            " count(*) AS runs FROM runs r, jsonb_each(r.tables) t WHERE r.connector_id = %s GROUP BY t.key",
            (record.connector.id,),
        ).fetchall()
    totals = {
        row["name"]: TableTotal(row["name"], int(row["rows"] or 0), int(row["bytes"] or 0), row["runs"])
        for row in reported
    }
    catalog = record.connector.source.postgres.catalog
    for schema, entry in catalog.schemas.items():
        for table in entry.tables:
            totals.setdefault(f"{schema}.{table}", TableTotal(f"{schema}.{table}"))
    return [totals[name] for name in sorted(totals)]


@dataclass(frozen=True)
class ConnectorView:
    row: ConnectorRow
    definition: str  # the connector document as JSON, secrets masked
    tables: list[TableTotal]
    runs: list[Run]
    next_cursor: str | None
    chart_runs: list[Run] = field(default_factory=list)  # oldest first

    @property
    def active_run(self) -> Run | None:
        last = self.row.last_run
        return last if last is not None and last.state in ACTIVE_STATES else None


def connector_view(conn: psycopg.Connection[Any], record: ConnectorRecord, *, cursor: str | None) -> ConnectorView:
    """``cursor``: the run-history page (``next_cursor`` of the previous one; raises ValueError if malformed)."""
    row = _row(conn, record, live_slot=True)
    rows, next_cursor = run_store.list_runs(conn, record.connector.id, RUNS_PER_PAGE, cursor)
    recent, _ = run_store.list_runs(conn, record.connector.id, CHART_RUNS, None)
    # model_dump masks secrets unless asked to reveal them (never here).
    definition = json.dumps(record.connector.model_dump(mode="json", exclude_none=True), indent=2)
    return ConnectorView(
        row=row,
        definition=definition,
        tables=table_totals(conn, record),
        runs=[Run.from_row(item) for item in rows],
        next_cursor=next_cursor,
        chart_runs=[Run.from_row(item) for item in reversed(recent)],
    )


@dataclass(frozen=True)
class StateChange:
    state: str
    at: datetime
    lasted: float | None  # seconds until the next state (None for the current one)


@dataclass(frozen=True)
class Remedy:
    """What to do about a failed run: the advice and, where a resync fixes it, the tables to resync."""

    advice: str
    resync_tables: list[str]
    resync_all: bool = False


@dataclass(frozen=True)
class RunView:
    run: Run
    connector: ConnectorRecord
    timeline: list[StateChange]
    lag_samples: list[tuple[datetime, int]]
    remedy: Remedy | None

    @property
    def duration(self) -> float | None:
        return run_duration(self.run)

    @property
    def bytes_total(self) -> int:
        return sum(stats.bytes for stats in self.run.tables.values())

    @property
    def rows_per_second(self) -> float | None:
        seconds = self.duration
        return self.run.rows_total / seconds if seconds else None

    @property
    def bytes_per_second(self) -> float | None:
        seconds = self.duration
        return self.bytes_total / seconds if seconds else None

    @property
    def active(self) -> bool:
        return self.run.state in ACTIVE_STATES


def _timeline(raw: list[dict[str, Any]]) -> list[StateChange]:
    points = [(str(item["state"]), datetime.fromisoformat(item["at"])) for item in raw]
    changes = []
    for index, (state, at) in enumerate(points):
        following = points[index + 1][1] if index + 1 < len(points) else None
        lasted = (following - at).total_seconds() if following else None
        changes.append(StateChange(state, at, lasted))
    return changes


_TABLE_IN_ERROR = re.compile(r'"?([^\s".:;,]+)"?\."?([^\s".:;,]+)"?')


def remedy_for(run: Run, known_tables: list[str]) -> Remedy | None:
    """Advice for a failed run. The engine's errors say what happened, then the remedy after the last "; "
    (slot.py, drift.py, ...); a resync button is offered only where a resync is the whole remedy."""
    if run.wal_status == "lost":
        return Remedy("The replication slot lost WAL the sink still needs: resync every table.", [], resync_all=True)
    if not run.error:
        return None
    problem, _, advice = run.error.rpartition("; ")
    if not problem:
        return Remedy("Fix what the error names, then start a new run (it resumes from the sink checkpoint).", [])
    advice = advice.strip()
    named = sorted({f"{schema}.{table}" for schema, table in _TABLE_IN_ERROR.findall(problem)} & set(known_tables))
    text = advice[:1].upper() + advice[1:] + ("" if advice.endswith(".") else ".")
    if "resync=true" in advice:
        return Remedy(text, [], resync_all=True)
    if advice.lower().startswith("resync the table") and named:
        return Remedy(text, named)
    return Remedy(text, [])


def run_view(conn: psycopg.Connection[Any], record: ConnectorRecord, row: dict[str, Any]) -> RunView:
    run = Run.from_row(row)
    known = sorted(set(run.tables) | {total.name for total in table_totals(conn, record)})
    samples = [(datetime.fromtimestamp(at, UTC), int(lag)) for at, lag in row.get("lag_samples") or []]
    return RunView(
        run=run,
        connector=record,
        timeline=_timeline(row.get("timeline") or []),
        lag_samples=samples,
        remedy=remedy_for(run, known) if run.state == "failed" or run.wal_status == "lost" else None,
    )
