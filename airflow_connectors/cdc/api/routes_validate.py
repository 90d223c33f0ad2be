"""``POST /validate/source`` and ``/validate/sink``: real checks against the database, as named steps.

They connect to hosts the caller names, so they hold no state-store connection while doing it, run within a deadline
whatever the server does, and are capped in number (429 beyond).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from airflow_connectors.cdc.api.body import documented_body, optional_json_body
from airflow_connectors.cdc.api.deps import get_store, require_connector, state_connection
from airflow_connectors.cdc.api.errors import ApiProblem, validation_problem
from airflow_connectors.cdc.api.limits import Limits
from airflow_connectors.cdc.connectors.models import Sink, Source, _Variant
from airflow_connectors.cdc.connectors.patch import (
    PatchError,
    check_secret_target,
    has_masked_secret,
    restore_masked_secrets,
)
from airflow_connectors.cdc.connectors.validation import (
    ValidationLimits,
    ValidationReport,
    refused_ssl_file,
    validate_sink,
    validate_source,
)

router = APIRouter(prefix="/api/v1/validate", tags=["validation"])


def _target(side: str, model: type[_Variant], body: Any, stored: Any) -> Any:
    """The postgres source/sink to check: the body, the stored connector's, or the body with the stored secrets."""
    if body is None:
        if stored is None:
            raise ApiProblem(422, "invalid_field", f"body: give the {side} to check, or ?connector_id=", field=side)
        body = stored
    elif stored is not None and has_masked_secret(body):
        sent = _parse(side, model, body)
        try:
            check_secret_target(sent.connection, _parse(side, model, stored).connection, f"{side}.postgres.connection")
        except PatchError as exc:
            raise ApiProblem(422, "secret_target_changed", str(exc), field=exc.field) from None
        body = restore_masked_secrets(body, stored)
    return _parse(side, model, body)


def _parse(side: str, model: type[_Variant], document: Any) -> Any:
    try:
        return model.model_validate(document).postgres  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise validation_problem(exc, prefix=side) from None


async def _validate(
    request: Request,
    side: str,
    model: type[_Variant],
    body: Any,
    connector_id: str | None,
    check: Callable[[Any, ValidationLimits], ValidationReport],
) -> ValidationReport:
    stored = None
    if connector_id is not None:  # the state-store connection is given back before anything connects out
        async with state_connection(request) as conn:
            record = await run_in_threadpool(require_connector, get_store(request), conn, connector_id)
        stored = record.connector.stored()[side]
    target = _target(side, model, body, stored)
    ssl_file = refused_ssl_file(target.connection)
    if ssl_file is not None and not request.app.state.allow_ssl_files:
        raise ApiProblem(
            422,
            "ssl_files_not_allowed",
            f"{side}.postgres.connection.{ssl_file}: validation does not read files on the service host (an operator "
            "may allow it with CDC_ALLOW_SSL_FILES=true)",
            field=f"{side}.postgres.connection.{ssl_file}",
        )
    limits: Limits = request.app.state.limits
    async with limits.outbound_slot():
        return await run_in_threadpool(check, target, request.app.state.validation_limits)


ConnectorId = Annotated[str | None, Query(description="Check this connector's stored settings (body optional)")]


@router.post("/source", response_model=ValidationReport, openapi_extra=documented_body(Source, required=False))
async def validate_source_route(
    request: Request, body: Annotated[Any, Depends(optional_json_body)], connector_id: ConnectorId = None
) -> ValidationReport:
    """Connects, checks ``wal_level``, the replication privilege, a free slot, the catalog's tables and their keys."""
    return await _validate(request, "source", Source, body, connector_id, validate_source)


@router.post("/sink", response_model=ValidationReport, openapi_extra=documented_body(Sink, required=False))
async def validate_sink_route(
    request: Request, body: Annotated[Any, Depends(optional_json_body)], connector_id: ConnectorId = None
) -> ValidationReport:
    """Connects and checks that the sink tables can be created in ``target_schema``."""
    return await _validate(request, "sink", Sink, body, connector_id, validate_sink)
