"""``airflow-connectors-cdc``: run the CDC core service (``serve``), migrate its store, generate a secret key.

Configuration comes from the environment (``CDC_STATE_DSN``, ``CDC_API_TOKEN``, ``CDC_SECRET_KEY``); flags override
it. ``serve --embedded-state DIR`` runs the state store on an embedded PostgreSQL kept in DIR, with credentials
generated once and kept there (mode 0600), so a laptop needs nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import psycopg
from pydantic import ValidationError

from airflow_connectors.cdc.connectors.secrets import SecretBox, SecretKeyError
from airflow_connectors.cdc.settings import ServiceSettings


def _embedded_state(directory: Path) -> tuple[Any, dict[str, str]]:
    """Start (initialising on first use) the embedded state store; returns it and its saved credentials."""
    from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres

    directory.mkdir(parents=True, exist_ok=True)
    credentials_file = directory / "credentials.json"
    if credentials_file.exists():
        credentials = json.loads(credentials_file.read_text())
    else:
        credentials = {
            "pg_password": secrets.token_urlsafe(24),
            "api_token": secrets.token_urlsafe(32),
            "secret_key": SecretBox.generate_key(),
        }
        credentials_file.touch(mode=0o600)
        credentials_file.write_text(json.dumps(credentials))
    server = EmbeddedPostgres(directory / "pgdata", password=credentials["pg_password"]).start()
    with server.connect(autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'cdc_state'").fetchone() is None:
            conn.execute("CREATE DATABASE cdc_state")
    return server, credentials


def _settings(args: argparse.Namespace, defaults: dict[str, str]) -> ServiceSettings:
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "state_dsn": args.state_dsn,
            "api_token": args.token,
            "secret_key": args.secret_key,
            "host": args.host,
            "port": args.port,
            "worker_processes": args.workers,
            "allow_unauthenticated": args.insecure_loopback or None,
        }.items()
        if value is not None
    }
    env = {key: os.environ.get(f"CDC_{key.upper()}") for key in defaults}
    for key, value in defaults.items():
        if key not in overrides and not env[key]:
            overrides[key] = value
    return ServiceSettings(**overrides)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from airflow_connectors.cdc.api.app import UnsafeConfiguration, create_app, open_state

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    embedded = None
    defaults: dict[str, str] = {}
    if args.embedded_state:
        embedded, credentials = _embedded_state(Path(args.embedded_state))
        defaults = {
            "state_dsn": embedded.conninfo("cdc_state"),
            "api_token": credentials["api_token"],
            "secret_key": credentials["secret_key"],
        }
    try:
        settings = _settings(args, defaults)
        app = create_app(settings)
    except ValidationError as exc:
        missing = ", ".join("CDC_" + str(error["loc"][0]).upper() for error in exc.errors())
        print(f"airflow-connectors-cdc: missing or invalid configuration: {missing}", file=sys.stderr)
        return 2
    except (UnsafeConfiguration, ValueError) as exc:
        print(f"airflow-connectors-cdc: {exc}", file=sys.stderr)
        return 2
    try:  # before serving: a state store that is down or a wrong key is said once, plainly
        open_state(settings)
    except SecretKeyError as exc:
        print(f"airflow-connectors-cdc: refusing to start: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"airflow-connectors-cdc: cannot use the state store (CDC_STATE_DSN): {reason}", file=sys.stderr)
        return 2
    url = f"http://{settings.host}:{settings.port}"
    print(f"CDC core service: {url}  (API docs: {url}/docs, OpenAPI: {url}/openapi.json)", flush=True)
    if args.embedded_state and settings.api_token is not None:
        # Only a token this command generated itself is printed; one from the environment is the caller's.
        print(f"API token: {settings.api_token.get_secret_value()}", flush=True)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from airflow_connectors.cdc.connectors.store import migrate

    dsn = args.state_dsn or os.environ.get("CDC_STATE_DSN")
    if not dsn:
        print("airflow-connectors-cdc: set CDC_STATE_DSN or --state-dsn", file=sys.stderr)
        return 2
    with psycopg.connect(dsn, autocommit=True) as conn:
        applied = migrate(conn)
    print("applied: " + (", ".join(applied) or "nothing (up to date)"))
    return 0


def generate_key(_: argparse.Namespace) -> int:
    print(SecretBox.generate_key())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="airflow-connectors-cdc", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the HTTP service and its run workers")
    run.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="listen port (default 8042)")
    run.add_argument("--state-dsn", default=None, help="overrides CDC_STATE_DSN")
    run.add_argument("--token", default=None, help="overrides CDC_API_TOKEN (prefer the environment)")
    run.add_argument("--secret-key", default=None, help="overrides CDC_SECRET_KEY (prefer the environment)")
    run.add_argument("--workers", type=int, default=None, help="run worker processes (default 2)")
    run.add_argument("--embedded-state", metavar="DIR", default=None, help="keep the state in an embedded PostgreSQL")
    run.add_argument(
        "--insecure-loopback", action="store_true", help="serve without a token (only on a loopback address)"
    )
    run.set_defaults(func=serve)
    mig = commands.add_parser("migrate", help="apply the state store migrations and exit")
    mig.add_argument("--state-dsn", default=None)
    mig.set_defaults(func=migrate_command)
    key = commands.add_parser("generate-key", help="print a new CDC_SECRET_KEY")
    key.set_defaults(func=generate_key)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
