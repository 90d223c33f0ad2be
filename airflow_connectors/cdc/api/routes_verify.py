"""``POST /connectors/{id}/verify``: queue a verifying catch-up run; its report arrives on the run.

A run, not a synchronous answer: comparing large tables takes a while, and only a run may move the connector's
sink to the consistent point both sides are compared at (one active run per connector keeps others out).
"""

from __future__ import annotations

from fastapi import APIRouter

from airflow_connectors.cdc.api.deps import Conn, Store, connector_blocked, require_connector
from airflow_connectors.cdc.api.errors import ApiProblem
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import Run, RunCreate

router = APIRouter(prefix="/api/v1/connectors/{connector_id}", tags=["runs"])


@router.post("/verify", status_code=202, response_model=Run)
def verify_connector(connector_id: str, conn: Conn, store: Store) -> Run:
    """Queue a catch-up run with ``verify: true``: it catches up to a consistent source snapshot, then compares
    each table's row count and checksum there (``verification`` on the run, with differing keys). It ends
    ``failed`` when a table differs. 409 ``run_active`` (with ``run_id``) while another run is active."""
    record = require_connector(store, conn, connector_id)
    blocked = connector_blocked(record)
    if blocked is not None:
        raise ApiProblem(409, "connector_inactive", f"connector {connector_id} is {blocked}")
    try:
        row = run_store.insert_run(conn, connector_id, RunCreate(verify=True), "api")
    except run_store.RunActive as exc:
        raise ApiProblem(
            409, "run_active", f"{exc}; verify after it ends (a run moves the sink)", run_id=exc.run_id
        ) from None
    return Run.from_row(row)
