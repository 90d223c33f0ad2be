"""Runs API: start, read, page and cancel replication runs of a connector.

The handlers only write rows: worker processes execute the runs. The one-active-run rule is a unique index, so
20 concurrent POSTs (to one or several service processes) queue exactly one run and the others get 409 with its id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError

from airflow_connectors.cdc.api.body import documented_body, optional_json_body
from airflow_connectors.cdc.api.deps import Conn, Store, connector_blocked, require_connector
from airflow_connectors.cdc.api.errors import ApiProblem, validation_problem
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import Run, RunCreate, RunPage
from airflow_connectors.cdc.runs.state_machine import RunFinished, RunState, check_cancellable

router = APIRouter(prefix="/api/v1/connectors/{connector_id}/runs", tags=["runs"])

_RUN_BODY = documented_body(RunCreate, required=False)


@router.post("", status_code=202, response_model=Run, openapi_extra=_RUN_BODY)
def start_run(connector_id: str, conn: Conn, store: Store, body: Annotated[Any, Depends(optional_json_body)]) -> Run:
    """Queue a run; a worker process executes it. 409 ``run_active`` (with ``run_id``) if one is active."""
    try:
        options = RunCreate.model_validate(body) if body is not None else RunCreate()
    except ValidationError as exc:
        raise validation_problem(exc) from None
    record = require_connector(store, conn, connector_id)
    blocked = connector_blocked(record)
    if blocked is not None:
        raise ApiProblem(409, "connector_inactive", f"connector {connector_id} is {blocked}")
    try:
        row = run_store.insert_run(conn, connector_id, options, "api")
    except run_store.RunActive as exc:
        raise ApiProblem(409, "run_active", str(exc), run_id=exc.run_id) from None
    return Run.from_row(row)


@router.get("", response_model=RunPage)
def list_runs(
    connector_id: str,
    conn: Conn,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query()] = None,
) -> Any:
    """The connector's runs, newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    require_connector(store, conn, connector_id)
    try:
        rows, next_cursor = run_store.list_runs(conn, connector_id, limit, cursor)
    except ValueError as exc:
        raise ApiProblem(422, "invalid_field", str(exc), field="cursor") from None
    return RunPage(items=[Run.from_row(row) for row in rows], next_cursor=next_cursor)


@router.get("/{run_id}", response_model=Run)
def get_run(connector_id: str, run_id: str, conn: Conn) -> Any:
    return Run.from_row(_require_run(conn, connector_id, run_id))


@router.post("/{run_id}/cancel", status_code=202, response_model=Run)
def cancel_run(connector_id: str, run_id: str, conn: Conn) -> Any:
    """Cancel a run: a queued one at once, a running one at its worker's next heartbeat (state follows)."""
    row = _require_run(conn, connector_id, run_id)
    try:
        check_cancellable(run_id, RunState(row["state"]))
    except RunFinished as exc:
        raise ApiProblem(409, "run_finished", str(exc), run_id=run_id) from None
    return Run.from_row(run_store.request_cancel(conn, run_id))


def _require_run(conn: Conn, connector_id: str, run_id: str) -> dict[str, Any]:
    row = run_store.get_run(conn, connector_id, run_id)
    if row is None:
        raise ApiProblem(
            404, "not_found", f"run {run_id!r} of connector {connector_id!r} does not exist", field="run_id"
        )
    return row
