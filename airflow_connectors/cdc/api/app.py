"""The service application: ``create_app(settings)`` wires the store, the routes, auth and the run workers."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI

from airflow_connectors.cdc.api import routes_connectors, routes_runs, routes_validate, routes_verify
from airflow_connectors.cdc.api.auth import require_token
from airflow_connectors.cdc.api.body import BodyLimitMiddleware, add_body_schemas
from airflow_connectors.cdc.api.errors import ERROR_RESPONSES, install_error_handlers
from airflow_connectors.cdc.secrets import SecretBox
from airflow_connectors.cdc.settings import ServiceSettings
from airflow_connectors.cdc.store import ConnectorStore, migrate
from airflow_connectors.cdc.worker import WorkerOptions, start_workers

logger = logging.getLogger(__name__)

DESCRIPTION = """The CDC core of airflow-connectors: PostgreSQL -> PostgreSQL replication, driven over HTTP.

Wire-compatible with Supermetal's connector API for connectors; replication runs, validation and commands are
ours. Every endpoint but `/health` needs `Authorization: Bearer <token>`. Errors always look like
`{"error": {"code", "message", "field"?}}`. Secrets (`password`, `ssl_key`) are write-only.
"""


class UnsafeConfiguration(RuntimeError):
    """The service would run in a way that is unsafe (e.g. without a token on a public interface)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_settings(settings: ServiceSettings) -> None:
    if settings.api_token is None and not settings.allow_unauthenticated:
        raise UnsafeConfiguration(
            "no API token: set CDC_API_TOKEN (or --token); to run without one on loopback, pass --insecure-loopback"
        )
    if settings.api_token is None and not is_loopback(settings.host):
        raise UnsafeConfiguration(f"refusing to serve without a token on the non-loopback address {settings.host}")
    SecretBox(settings.secret_key.get_secret_value())  # fails early on a malformed key


def create_app(settings: ServiceSettings, *, workers: WorkerOptions | None = None) -> FastAPI:
    """``workers``: options of this process's run workers (default from settings; processes=0 for API only)."""
    check_settings(settings)
    options = workers or WorkerOptions(
        processes=settings.worker_processes, engine=settings.engine, lease_seconds=settings.lease_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with psycopg.connect(settings.dsn(), autocommit=True) as conn:
            applied = migrate(conn)
        if applied:
            logger.info("state store migrated: %s", ", ".join(applied))
        app.state.store = ConnectorStore(
            settings.dsn(), SecretBox(settings.secret_key.get_secret_value()), max_size=settings.pool_max_size
        )
        pool = start_workers(settings, options) if options.processes > 0 else None
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
            app.state.store.close()

    app = FastAPI(
        title="airflow-connectors CDC core",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        responses=ERROR_RESPONSES,
    )
    app.state.api_token = settings.api_token.get_secret_value() if settings.api_token else None
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    install_error_handlers(app)
    for router in (routes_connectors.router, routes_runs.router, routes_validate.router, routes_verify.router):
        app.include_router(router, dependencies=[Depends(require_token)])

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_body_schemas(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness, without authentication (for load balancers)."""
        return {"status": "ok"}

    return app
