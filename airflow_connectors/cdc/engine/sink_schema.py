"""Sink tables built from the plans: same column types (enums as text, domains as their base type), NOT NULL and
primary key; secondary indexes are added after the initial load, when building them is cheapest.

Secondary indexes are created non-unique on purpose: the source already enforces uniqueness, and a unique index
in the sink could reject an intermediate state of a batch applied out of source order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.plan import TablePlan


def table_ident(plan: TablePlan) -> sql.Identifier:
    return sql.Identifier(plan.sink_schema, plan.sink_table)


@contextmanager
def serialized_ddl(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One transaction holding the sink's DDL lock: ``CREATE ... IF NOT EXISTS`` is not safe against a concurrent
    twin (two connectors' first runs into one sink would fail with UniqueViolation), so creators take turns."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('airflow_connectors.sink_ddl'))")
        yield


def create_table(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    """Create the sink table if it does not exist (an existing one is kept: runs resume, drift is handled later)."""
    with serialized_ddl(conn):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(plan.sink_schema)))
        _create_table(conn, plan)


def _create_table(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(column.name), sql.SQL(column.sink_type), sql.SQL(" NOT NULL" if column.not_null else "")
        )
        for column in plan.columns
    ]
    if plan.key:
        columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, plan.key))))
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table_ident(plan), sql.SQL(", ").join(columns)))


def truncate(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    conn.execute(sql.SQL("TRUNCATE {}").format(table_ident(plan)))


def create_indexes(
    conn: psycopg.Connection[Any], plan: TablePlan, indexes: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    for name, method, columns in indexes:
        # Index names are per schema: derive a stable one from the sink table and the columns.
        digest = hashlib.sha256(f"{plan.sink_table}:{','.join(columns)}".encode()).hexdigest()[:8]
        index_name = f"{plan.sink_table[:40]}_{name[:12]}_{digest}"
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
                sql.Identifier(index_name),
                table_ident(plan),
                sql.Identifier(method),
                sql.SQL(", ").join(map(sql.Identifier, columns)),
            )
        )


def drop_key(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    """Before a bulk load into an empty table: building the key index once afterwards beats maintaining it."""
    row = conn.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'p'"
        " AND conrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass",
        (plan.sink_schema, plan.sink_table),
    ).fetchone()
    if row is not None:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table_ident(plan), sql.Identifier(row[0])))


def add_key(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    if plan.key:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                table_ident(plan), sql.SQL(", ").join(map(sql.Identifier, plan.key))
            )
        )
