"""Pre-flight checks of a source or sink, run against the real database, reported as named steps.

Each step says what it checked and, when it fails, what to change; later steps that need an earlier one to pass
are skipped rather than reported as noise.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel

from airflow_connectors.cdc.connectors.models import PostgresConnection, PostgresSink, PostgresSource

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class Step(BaseModel):
    name: str
    passed: bool
    message: str


class ValidationReport(BaseModel):
    ok: bool
    steps: list[Step]


def _connect(connection: PostgresConnection, steps: list[Step]) -> psycopg.Connection[Any] | None:
    try:
        conn = psycopg.connect(connection.conninfo(connect_timeout=5), autocommit=True)
    except (psycopg.Error, OSError, ValueError) as exc:  # ValueError: e.g. a host name IDNA cannot encode
        # libpq messages name host and port but never the password.
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        steps.append(Step(name="connect", passed=False, message=f"cannot connect: {reason}"))
        return None
    version = conn.info.server_version
    steps.append(Step(name="connect", passed=True, message=f"connected to PostgreSQL {version // 10000}"))
    return conn


def _check(steps: list[Step], name: str, passed: bool, ok: str, failed: str) -> bool:
    steps.append(Step(name=name, passed=passed, message=ok if passed else failed))
    return passed


def selected_tables(conn: psycopg.Connection[Any], source: PostgresSource) -> list[tuple[str, str, bool, str]]:
    """(schema, table, has primary key, replica identity) of every table the catalog selects."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname,"
        " EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),"
        " c.relreplident::text"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> ALL(%s)"
        " AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'"
        " AND n.nspname <> '_airflow_connectors' ORDER BY 1, 2",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return [row for row in rows if source.catalog.selects(row[0], row[1])]


def validate_source(source: PostgresSource) -> ValidationReport:
    steps: list[Step] = []
    conn = _connect(source.connection, steps)
    if conn is None:
        return ValidationReport(ok=False, steps=steps)
    with conn:
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
        tables = selected_tables(conn, source)
        found = {(schema, table) for schema, table, _, _ in tables}
        missing = [
            f"{schema}.{table}"
            for schema, entry in source.catalog.schemas.items()
            for table in entry.tables
            if (schema, table) not in found
        ]
        _check(
            steps,
            "catalog_tables",
            bool(tables) and not missing,
            f"{len(tables)} table(s) selected",
            f"not found on the source: {', '.join(missing)}" if missing else "the catalog selects no table",
        )
        unkeyed = [f"{schema}.{table}" for schema, table, has_pk, ident in tables if not has_pk and ident != "f"]
        _check(
            steps,
            "replica_identity",
            not unkeyed,
            "every table has a primary key or REPLICA IDENTITY FULL",
            "no primary key and no REPLICA IDENTITY FULL (updates and deletes cannot be matched): "
            + ", ".join(unkeyed)
            + "; add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL",
        )
    return ValidationReport(ok=all(step.passed for step in steps), steps=steps)


def validate_sink(sink: PostgresSink) -> ValidationReport:
    steps: list[Step] = []
    conn = _connect(sink.connection, steps)
    if conn is None:
        return ValidationReport(ok=False, steps=steps)
    with conn:
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
    return ValidationReport(ok=all(step.passed for step in steps), steps=steps)
