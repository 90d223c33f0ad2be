"""``POST /validate/source`` and ``/validate/sink``: real checks against the database, as named steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError

from airflow_connectors.cdc.api.body import documented_body, optional_json_body
from airflow_connectors.cdc.api.deps import Conn, Store, require_connector
from airflow_connectors.cdc.api.errors import ApiProblem, validation_problem
from airflow_connectors.cdc.models import Sink, Source, _Variant
from airflow_connectors.cdc.patch import PatchError, check_secret_target, has_masked_secret, restore_masked_secrets
from airflow_connectors.cdc.validation import ValidationReport, validate_sink, validate_source

router = APIRouter(prefix="/api/v1/validate", tags=["validation"])


def _target(side: str, model: type[_Variant], body: Any, conn: Conn, store: Store, connector_id: str | None) -> Any:
    """The postgres source/sink to check: the body, the stored connector's, or the body with the stored secrets."""
    stored = None
    if connector_id is not None:
        stored = require_connector(store, conn, connector_id).connector.stored()[side]
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


ConnectorId = Annotated[str | None, Query(description="Check this connector's stored settings (body optional)")]


@router.post("/source", response_model=ValidationReport, openapi_extra=documented_body(Source, required=False))
def validate_source_route(
    conn: Conn, store: Store, body: Annotated[Any, Depends(optional_json_body)], connector_id: ConnectorId = None
) -> ValidationReport:
    """Connects, checks ``wal_level``, the replication privilege, a free slot, the catalog's tables and their keys."""
    return validate_source(_target("source", Source, body, conn, store, connector_id))


@router.post("/sink", response_model=ValidationReport, openapi_extra=documented_body(Sink, required=False))
def validate_sink_route(
    conn: Conn, store: Store, body: Annotated[Any, Depends(optional_json_body)], connector_id: ConnectorId = None
) -> ValidationReport:
    """Connects and checks that the sink tables can be created in ``target_schema``."""
    return validate_sink(_target("sink", Sink, body, conn, store, connector_id))
