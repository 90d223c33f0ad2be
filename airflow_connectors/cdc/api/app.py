"""The service application: ``create_app(settings)`` wires the store, the routes, auth and the run workers."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from airflow_connectors.cdc.api import routes_connectors, routes_runs, routes_validate, routes_verify
from airflow_connectors.cdc.api.auth import require_token
from airflow_connectors.cdc.api.body import BodyLimitMiddleware, add_body_schemas
from airflow_connectors.cdc.api.console.routes import install_console
from airflow_connectors.cdc.api.deps import printable_path_ids
from airflow_connectors.cdc.api.errors import ERROR_RESPONSES, install_error_handlers
from airflow_connectors.cdc.api.limits import Limits
from airflow_connectors.cdc.api.metrics import install_metrics
from airflow_connectors.cdc.connectors.secrets import SecretBox
from airflow_connectors.cdc.connectors.store import ConnectorStore, check_secret_key, migrate
from airflow_connectors.cdc.connectors.validation import ValidationLimits
from airflow_connectors.cdc.runs.pool import WorkerOptions, start_workers
from airflow_connectors.cdc.runs.scheduler import SchedulerThread
from airflow_connectors.cdc.settings import ServiceSettings

logger = logging.getLogger(__name__)

DESCRIPTION = """The CDC core of airflow-connectors: PostgreSQL -> PostgreSQL replication, driven over HTTP.

Wire-compatible with Supermetal's connector API for connectors; replication runs, validation and commands are
ours. Every endpoint but `/health` (and, unless `CDC_DOCS_NEED_TOKEN=true`, these documents) needs
`Authorization: Bearer <token>` (`/metrics` too, unless `CDC_METRICS_PUBLIC` is set); people sign in to the web
console at `/console/` with the same token. Errors always look like `{"error": {"code", "message", "field"?}}`.
Secrets (`password`, `ssl_key`) are write-only.
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


MIN_TOKEN_LENGTH = 16
TOKEN_ADVICE = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_settings(settings: ServiceSettings) -> None:
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise UnsafeConfiguration(f"CDC_API_TOKEN must be at least {MIN_TOKEN_LENGTH} characters; {TOKEN_ADVICE}")
    if token is None and not settings.allow_unauthenticated:
        raise UnsafeConfiguration(
            f"no API token: set CDC_API_TOKEN (or --token; {TOKEN_ADVICE}); to run without one on loopback, pass"
            " --insecure-loopback"
        )
    if settings.api_token is None and not is_loopback(settings.host):
        raise UnsafeConfiguration(f"refusing to serve without a token on the non-loopback address {settings.host}")
    SecretBox(settings.secret_key.get_secret_value())  # fails early on a malformed key


def open_state(settings: ServiceSettings) -> list[str]:
    """Migrate the state store and prove the secret key decrypts what it holds (raises ``SecretKeyError``)."""
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:
        applied = migrate(conn)
        check_secret_key(conn, SecretBox(settings.secret_key.get_secret_value()))
    return applied


def _private_docs(app: FastAPI) -> None:
    """The documents behind the token (``CDC_DOCS_NEED_TOKEN=true``); a browser must then send the header itself."""
    locked = [Depends(require_token)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=locked)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=locked)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/redoc", include_in_schema=False, dependencies=locked)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title)


def create_app(settings: ServiceSettings, *, workers: WorkerOptions | None = None) -> FastAPI:
    """``workers``: options of this process's run workers (default from settings; processes=0 for API only)."""
    check_settings(settings)
    options = workers or WorkerOptions(
        processes=settings.worker_processes, engine=settings.engine, lease_seconds=settings.lease_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        applied = open_state(settings)
        if applied:
            logger.info("state store migrated: %s", ", ".join(applied))
        app.state.limits = Limits(settings)
        app.state.limits.size_thread_pool()
        app.state.store = ConnectorStore(
            settings.dsn(),
            SecretBox(settings.secret_key.get_secret_value()),
            max_size=settings.pool_max_size,
            timeout=settings.pool_wait_seconds,
        )
        scheduler = SchedulerThread(settings.dsn())
        scheduler.start()
        pool = start_workers(settings, options) if options.processes > 0 else None
        app.state.workers = pool
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
            scheduler.stop()
            app.state.store.close()

    app = FastAPI(
        title="airflow-connectors CDC core",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        responses=ERROR_RESPONSES,
        # With CDC_DOCS_NEED_TOKEN the documents are served by _private_docs, behind the token.
        openapi_url=None if settings.docs_need_token else "/openapi.json",
        docs_url=None if settings.docs_need_token else "/docs",
        redoc_url=None if settings.docs_need_token else "/redoc",
    )
    app.state.api_token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    app.state.validation_limits = ValidationLimits(settings.validation_deadline_seconds)
    app.state.allow_ssl_files = settings.allow_ssl_files
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    install_error_handlers(app)
    for router in (routes_connectors.router, routes_runs.router, routes_validate.router, routes_verify.router):
        app.include_router(router, dependencies=[Depends(require_token), Depends(printable_path_ids)])
    install_console(app, settings)
    install_metrics(app, settings)

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_body_schemas(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if settings.docs_need_token:
        _private_docs(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness, without authentication (for load balancers)."""
        return {"status": "ok"}

    return app
