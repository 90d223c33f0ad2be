"""Connectors: create, create-or-replace, merge-patch, read, list, delete, and the start/stop/pause/resume commands."""

from __future__ import annotations

import enum
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from airflow_connectors.cdc.api.body import MERGE_PATCH, documented_body, json_body, merge_patch_body
from airflow_connectors.cdc.api.deps import (
    Conn,
    Store,
    connector_blocked,
    connector_response,
    get_store,
    require_connector,
    state_connection,
)
from airflow_connectors.cdc.api.errors import ApiProblem, validation_problem
from airflow_connectors.cdc.api.limits import Limits
from airflow_connectors.cdc.connectors import slot_health
from airflow_connectors.cdc.connectors.models import Connector, ConnectorPage, ConnectorResponse
from airflow_connectors.cdc.connectors.patch import PatchError, apply_patch, check_patch, restore_masked_secrets
from airflow_connectors.cdc.connectors.store import ConnectorNotFound, ConnectorRecord, VersionMismatch
from airflow_connectors.cdc.engine.interface import EngineError
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import RunCreate

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])

_CREATE_BODY = documented_body(Connector)
_PATCH_BODY = documented_body(
    Connector,
    content_type=MERGE_PATCH,
    description="JSON Merge Patch (RFC 7396) of a Connector: objects merge, null deletes, arrays replace; "
    "any subset of the fields.",
)


def _validate(body: Any, connector_id: str) -> Connector:
    """The schema requires ``id`` in the body, but the server (or the path) decides its value."""
    if not isinstance(body, dict):
        raise ApiProblem(422, "invalid_field", "body: a connector must be a JSON object")
    if "id" not in body:
        raise ApiProblem(422, "invalid_field", 'id: Field required (send "" to let the server choose)', field="id")
    try:
        return Connector.model_validate({**body, "id": connector_id})
    except ValidationError as exc:
        raise validation_problem(exc) from None


def _respond(response: Response, conn: Conn, record: ConnectorRecord, *, live: bool = False) -> ConnectorResponse:
    response.headers["ETag"] = record.etag
    return connector_response(conn, record, live_slot=live)


@router.post("", status_code=201, response_model=ConnectorResponse, openapi_extra=_CREATE_BODY)
def create_connector(
    response: Response, conn: Conn, store: Store, body: Annotated[Any, Depends(json_body)]
) -> ConnectorResponse:
    """Create a connector; the server generates its id (the body's ``id`` is required but ignored)."""
    connector = _validate(body, "pending")
    return _respond(response, conn, store.create(conn, connector))


@router.post(
    "/{connector_id}",
    response_model=ConnectorResponse,
    responses={201: {"model": ConnectorResponse, "description": "Created"}},
    openapi_extra=_CREATE_BODY,
)
def replace_connector(
    connector_id: str, response: Response, conn: Conn, store: Store, body: Annotated[Any, Depends(json_body)]
) -> ConnectorResponse:
    """Create or replace the connector with this id (the path id wins). Masked secrets keep the stored value;
    like PATCH, a replace may not move the connector to another database."""

    def build(current: ConnectorRecord | None) -> Connector:
        if current is None:
            return _validate(body, connector_id)
        document = restore_masked_secrets(body, current.connector.stored()) if isinstance(body, dict) else body
        replacement = _validate(document, connector_id)
        stored = replacement.stored()
        try:  # the same immutability rules as a patch, checked on the full document
            check_patch(current.connector, {"source": stored["source"], "sink": stored["sink"]})
        except PatchError as exc:
            raise ApiProblem(422, "immutable_field", str(exc), field=exc.field) from None
        return replacement

    record, created = store.replace(conn, connector_id, build)
    response.status_code = 201 if created else 200
    _stop_if_disabled(conn, record)
    return _respond(response, conn, record)


@router.patch("/{connector_id}", response_model=ConnectorResponse, openapi_extra=_PATCH_BODY)
def patch_connector(
    connector_id: str,
    response: Response,
    conn: Conn,
    store: Store,
    body: Annotated[Any, Depends(merge_patch_body)],
    if_match: Annotated[str | None, Header(description="ETag of the version this patch was made from")] = None,
) -> ConnectorResponse:
    """Merge-patch a connector. Concurrent patches are serialised on the connector's row lock, each merged onto
    the latest version (no lost updates of other fields); send ``If-Match`` to be refused (412) if it changed."""

    def change(current: ConnectorRecord) -> Connector:
        try:
            return apply_patch(current.connector, body)
        except PatchError as exc:
            raise ApiProblem(422, "immutable_field", str(exc), field=exc.field or None) from None
        except ValidationError as exc:
            raise validation_problem(exc) from None

    try:
        record = store.update(conn, connector_id, change, if_match=if_match)
    except ConnectorNotFound as exc:
        raise ApiProblem(404, "not_found", str(exc), field="connector_id") from None
    except VersionMismatch as exc:
        raise ApiProblem(412, "version_mismatch", str(exc), field="If-Match") from None
    slot_health.forget(connector_id)
    _stop_if_disabled(conn, record)
    return _respond(response, conn, record)


def _stop_if_disabled(conn: Conn, record: ConnectorRecord) -> None:
    """A connector just disabled starts no new run, and its active run is cancelled like a ``pause``."""
    if record.connector.disabled:
        run_store.cancel_active_runs(conn, record.connector.id)


@router.get("/{connector_id}", response_model=ConnectorResponse)
def get_connector(connector_id: str, response: Response, conn: Conn, store: Store) -> ConnectorResponse:
    """The connector (secrets masked), its status (latest run, slot lag and ``wal_status``) and latest run id."""
    return _respond(response, conn, require_connector(store, conn, connector_id), live=True)


@router.get("", response_model=ConnectorPage)
def list_connectors(
    conn: Conn,
    store: Store,
    name: Annotated[str | None, Query(description="Only connectors with this exact name")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ConnectorPage:
    """Connectors in creation order, a page at a time."""
    try:
        after = run_store.parse_cursor(cursor)
    except ValueError as exc:
        raise ApiProblem(422, "invalid_field", str(exc), field="cursor") from None
    records, next_seq = store.list(conn, name=name, limit=limit, cursor=after)
    return ConnectorPage(
        items=[connector_response(conn, record) for record in records],
        next_cursor=str(next_seq) if next_seq is not None else None,
    )


@router.delete("/{connector_id}", status_code=204, response_class=Response)
async def delete_connector(
    connector_id: str,
    request: Request,
    keep_replication_objects: Annotated[
        bool, Query(description="Keep the source's replication slot and publication (e.g. to hand them over)")
    ] = False,
) -> Response:
    """Delete the connector and its run history; its active run is cancelled, and unless asked otherwise the
    replication slot and publication it created on the source are dropped (so the source does not keep WAL).
    No state-store connection is held while talking to the source, and that talk ends within the deadline."""
    store = get_store(request)
    async with state_connection(request) as conn:
        record = await run_in_threadpool(require_connector, store, conn, connector_id)
        await run_in_threadpool(run_store.cancel_active_runs, conn, connector_id)
    if not keep_replication_objects:
        limits: Limits = request.app.state.limits
        async with limits.outbound_slot():
            await run_in_threadpool(_drop_source_objects, record, request.app.state.validation_limits.deadline_seconds)
    async with state_connection(request) as conn:
        try:
            await run_in_threadpool(store.delete, conn, connector_id)
        except ConnectorNotFound as exc:  # deleted meanwhile by another request
            raise ApiProblem(404, "not_found", str(exc), field="connector_id") from None
    slot_health.forget(connector_id)
    return Response(status_code=204)


def _drop_source_objects(record: ConnectorRecord, timeout: float) -> None:
    from airflow_connectors.cdc.engine import drop_source_objects  # heavy: imported on use

    try:
        drop_source_objects(record.connector, timeout=timeout)
    except EngineError as exc:
        raise ApiProblem(409, "cleanup_failed", f"{exc}; retry, or pass keep_replication_objects=true") from None
    except Exception as exc:  # source unreachable or stalled: say so without echoing connection details
        raise ApiProblem(
            409,
            "cleanup_failed",
            f"could not drop the source slot and publication ({type(exc).__name__}); retry when the source is "
            "reachable, or pass keep_replication_objects=true",
        ) from None


class Command(enum.StrEnum):
    START = "start"  # queue a catch-up run now
    STOP = "stop"  # cancel the active run
    PAUSE = "pause"  # no runs (scheduled or requested) until resume; the active run is cancelled
    RESUME = "resume"


class CommandBody(BaseModel):
    command: Command


@router.post(
    "/{connector_id}/commands",
    response_model=ConnectorResponse,
    openapi_extra=documented_body(CommandBody),
)
def connector_command(
    connector_id: str, response: Response, conn: Conn, store: Store, body: Annotated[Any, Depends(json_body)]
) -> ConnectorResponse:
    """``start`` (queue a catch-up run; 409 if one is active), ``stop``, ``pause``, ``resume``."""
    try:
        command = CommandBody.model_validate(body).command
    except ValidationError as exc:
        raise validation_problem(exc) from None
    record = require_connector(store, conn, connector_id)
    if command is Command.START:
        blocked = connector_blocked(record)
        if blocked is not None:
            raise ApiProblem(409, "connector_inactive", f"connector {connector_id} is {blocked}")
        try:
            run_store.insert_run(conn, connector_id, RunCreate(), "api")
        except run_store.RunActive as exc:
            raise ApiProblem(409, "run_active", str(exc), run_id=exc.run_id) from None
    elif command is Command.STOP:
        run_store.cancel_active_runs(conn, connector_id)
    else:
        paused = command is Command.PAUSE
        record = store.set_paused(conn, connector_id, paused)
        if paused:
            run_store.cancel_active_runs(conn, connector_id)
    return _respond(response, conn, record)
