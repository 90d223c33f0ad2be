"""Dependencies shared by the routes: a state-store connection per request, connector lookup, responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import psycopg
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from airflow_connectors.cdc.api.errors import ApiProblem
from airflow_connectors.cdc.api.limits import Limits
from airflow_connectors.cdc.connectors import slot_health
from airflow_connectors.cdc.connectors.models import ConnectorResponse, ConnectorStatus, LastRun, has_control_characters
from airflow_connectors.cdc.connectors.store import ConnectorNotFound, ConnectorRecord, ConnectorStore
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.state_machine import ACTIVE_STATES, RunState


def printable_path_ids(request: Request) -> None:
    """Ids in paths reach the logs: control characters (CR/LF forging log lines) are refused, as at creation."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and has_control_characters(value):
            raise ApiProblem(
                422, "invalid_field", f"{name}: must not contain control or invisible formatting characters", field=name
            )


def get_store(request: Request) -> ConnectorStore:
    return request.app.state.store  # type: ignore[no-any-return]


@asynccontextmanager
async def state_connection(request: Request) -> AsyncIterator[psycopg.Connection[Any]]:
    """A state-store connection within the API's budget (:mod:`limits`): waits without holding a thread, 503 when
    the pool stays busy. Taking and giving it back are shielded: a client hanging up must not leak a connection."""
    limits: Limits = request.app.state.limits
    store = get_store(request)
    async with limits.connection_slot():
        with anyio.CancelScope(shield=True):
            conn = await run_in_threadpool(store.acquire)
        try:
            yield conn
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(store.release, conn)


async def get_conn(request: Request) -> AsyncIterator[psycopg.Connection[Any]]:
    # The whole body first: a slow upload must not hold a state-store connection. A form (the console's) has
    # already been read whole by FastAPI's form parsing, which leaves no stream behind to read again.
    try:
        await request.body()
    except RuntimeError as exc:  # read by the form parser; anything else is a fault to report
        if str(exc) != "Stream consumed":
            raise
    async with state_connection(request) as conn:
        yield conn


Store = Annotated[ConnectorStore, Depends(get_store)]
Conn = Annotated[psycopg.Connection[Any], Depends(get_conn)]


def require_connector(store: ConnectorStore, conn: psycopg.Connection[Any], connector_id: str) -> ConnectorRecord:
    try:
        return store.get(conn, connector_id)
    except ConnectorNotFound as exc:
        raise ApiProblem(404, "not_found", str(exc), field="connector_id") from None


def connector_blocked(record: ConnectorRecord) -> str | None:
    """Why the connector may not start runs now, or None."""
    if record.connector.disabled:
        return "disabled"
    if record.paused:
        return "paused"
    return None


def connector_status(conn: psycopg.Connection[Any], record: ConnectorRecord, *, live_slot: bool) -> ConnectorStatus:
    """Flags + latest run; ``live_slot`` also asks the source for the slot's lag (single-connector reads only)."""
    summary = run_store.latest_run_summary(conn, record.connector.id) or {}
    last = summary.get("last_run")
    status = ConnectorStatus(
        paused=record.paused,
        last_run=LastRun.model_validate(last) if last else None,
        runs_total=summary.get("runs_total", 0),
        runs_failed=summary.get("runs_failed", 0),
        lag_bytes=summary.get("lag_bytes"),
        wal_status=summary.get("wal_status"),
    )
    blocked = connector_blocked(record)
    if blocked is not None:
        status.state = blocked  # type: ignore[assignment]
    elif last and RunState(last["state"]) in ACTIVE_STATES:
        status.state = "running"
    if live_slot:
        slot = slot_health.slot_status(record.connector)
        if slot is not None:
            status.lag_bytes, status.wal_status = slot["lag_bytes"], slot["wal_status"]
    return status


def connector_response(
    conn: psycopg.Connection[Any], record: ConnectorRecord, *, live_slot: bool = False
) -> ConnectorResponse:
    status = connector_status(conn, record, live_slot=live_slot)
    return ConnectorResponse(
        connector=record.connector,
        status=status,
        run_id=status.last_run.run_id if status.last_run else None,
        created_at=record.created_at,
    )
