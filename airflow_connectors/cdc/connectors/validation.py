"""Pre-flight checks of a source or sink, run against the real database, reported as named steps.

Each step says what it checked and, when it fails, what to change; later steps that need an earlier one to pass
are skipped rather than reported as noise.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel

from airflow_connectors.cdc import io_deadline
from airflow_connectors.cdc.connectors.models import PostgresConnection, PostgresSink, PostgresSource
from airflow_connectors.cdc.engine.source_catalog import selected_tables, table_key


class Step(BaseModel):
    name: str
    passed: bool
    message: str


class ValidationReport(BaseModel):
    ok: bool
    steps: list[Step]


SSL_FILE_FIELDS = ("ssl_cert", "ssl_key", "ssl_root_cert")


@dataclass(frozen=True)
class ValidationLimits:
    """``deadline_seconds`` bounds connect plus checks, whatever the checked server does (it may be hostile)."""

    deadline_seconds: float = 15.0

    def too_slow(self, what: str) -> str:
        return f"{what} within the validation deadline ({self.deadline_seconds:g} s)"


def refused_ssl_file(connection: PostgresConnection) -> str | None:
    """The first ``ssl_*`` file path set, if any: reading files of the service host is for operators to allow."""
    return next((name for name in SSL_FILE_FIELDS if getattr(connection, name) is not None), None)


def _reason(exc: BaseException) -> str:
    # libpq messages name host and port but never the password.
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _addresses(host: str, port: int) -> list[str]:
    """The host's addresses, resolved once: each is tried within what is left of the deadline (not one timeout each)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _connect(
    connection: PostgresConnection, steps: list[Step], limits: ValidationLimits, end: float
) -> psycopg.Connection[Any] | None:
    try:
        addresses = _addresses(connection.host, connection.port)
    except (OSError, ValueError) as exc:  # ValueError: e.g. a host name IDNA cannot encode
        steps.append(Step(name="connect", passed=False, message=f"cannot resolve the host: {_reason(exc)}"))
        return None
    failure = "no address"
    for address in addresses:
        left = end - time.monotonic()
        if left <= 0:
            break
        conninfo = connection.conninfo(
            hostaddr=address,
            connect_timeout=max(2, math.ceil(left)),
            options=f"-c statement_timeout={int(limits.deadline_seconds * 1000)}",
        )
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.errors.ConnectionTimeout:
            failure = limits.too_slow("no answer")
            continue
        except (psycopg.Error, OSError, ValueError) as exc:
            failure = _reason(exc)
            continue
        version = conn.info.server_version
        steps.append(Step(name="connect", passed=True, message=f"connected to PostgreSQL {version // 10000}"))
        return conn
    if time.monotonic() >= end and "deadline" not in failure:
        failure = limits.too_slow("no connection")
    steps.append(Step(name="connect", passed=False, message=f"cannot connect: {failure}"))
    return None


def _validate(
    connection: PostgresConnection,
    limits: ValidationLimits,
    checks: Callable[[psycopg.Connection[Any], list[Step]], None],
) -> ValidationReport:
    """Connect and run ``checks`` within the deadline: a server that stops answering fails a step, never hangs us."""
    steps: list[Step] = []
    end = time.monotonic() + limits.deadline_seconds
    conn = _connect(connection, steps, limits, end)
    if conn is None:
        return ValidationReport(ok=False, steps=steps)
    with conn, io_deadline.deadline(conn, end - time.monotonic()) as expired:
        try:
            checks(conn, steps)
        except psycopg.Error as exc:
            message = limits.too_slow("the checks did not finish") if expired.fired else _reason(exc)
            steps.append(Step(name="checks", passed=False, message=message))
    return ValidationReport(ok=all(step.passed for step in steps), steps=steps)


def _check(steps: list[Step], name: str, passed: bool, ok: str, failed: str) -> bool:
    steps.append(Step(name=name, passed=passed, message=ok if passed else failed))
    return passed


def validate_source(source: PostgresSource, limits: ValidationLimits | None = None) -> ValidationReport:
    return _validate(
        source.connection, limits or ValidationLimits(), lambda conn, steps: _source_checks(conn, source, steps)
    )


def _source_checks(conn: psycopg.Connection[Any], source: PostgresSource, steps: list[Step]) -> None:
    wal_level = conn.execute("SHOW wal_level").fetchone()
    _check(
        steps,
        "wal_level",
        bool(wal_level and wal_level[0] == "logical"),
        "wal_level = logical",
        f"wal_level is {wal_level[0] if wal_level else '?'}: set wal_level = logical and restart the server",
    )
    role = conn.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    _check(
        steps,
        "replication_privilege",
        bool(role and role[0]),
        "the user may replicate",
        f"grant it: ALTER ROLE {source.connection.user} WITH REPLICATION",
    )
    slots = conn.execute(
        "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)"
    ).fetchone()
    free = int(slots[0]) if slots else 0
    _check(
        steps,
        "replication_slots",
        free > 0,
        f"{free} replication slot(s) free",
        "no free replication slot: raise max_replication_slots or drop unused slots",
    )
    tables, missing = selected_tables(conn, source)  # what the engine would replicate, read as it reads it
    _check(
        steps,
        "catalog_tables",
        bool(tables) and not missing,
        f"{len(tables)} table(s) selected",
        f"not found on the source: {', '.join(missing)}" if missing else "the catalog selects no table",
    )
    unkeyed = [
        f"{schema}.{table}" for oid, schema, table, _, ident in tables if ident != "f" and not table_key(conn, oid)
    ]
    _check(
        steps,
        "replica_identity",
        not unkeyed,
        "every table has a primary key (or replica identity index) or REPLICA IDENTITY FULL",
        "no primary key and no REPLICA IDENTITY FULL (updates and deletes cannot be matched): "
        + ", ".join(unkeyed)
        + "; add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL",
    )


def validate_sink(sink: PostgresSink, limits: ValidationLimits | None = None) -> ValidationReport:
    return _validate(sink.connection, limits or ValidationLimits(), lambda conn, steps: _sink_checks(conn, sink, steps))


def _sink_checks(conn: psycopg.Connection[Any], sink: PostgresSink, steps: list[Step]) -> None:
    schema = sink.target_schema
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s),"
        " has_database_privilege(current_user, current_database(), 'CREATE'),"
        " (SELECT has_schema_privilege(current_user, oid, 'CREATE') FROM pg_namespace WHERE nspname = %s)",
        (schema, schema),
    ).fetchone()
    exists, may_create_schema, may_create_tables = row if row else (False, False, False)
    if exists:
        _check(
            steps,
            "target_schema",
            bool(may_create_tables),
            f"may create tables in schema {schema!r}",
            f"grant it: GRANT CREATE ON SCHEMA {sql.Identifier(schema).as_string(conn)} TO {sink.connection.user}",
        )
    else:
        _check(
            steps,
            "target_schema",
            bool(may_create_schema),
            f"schema {schema!r} will be created",
            f"schema {schema!r} does not exist and the user may not create it (GRANT CREATE ON DATABASE)",
        )
