"""Sink tables built from the plans: same column types (enums as text, domains as their base type) and primary
key; secondary indexes are added after the initial load, when building them is cheapest.

Secondary indexes are created non-unique on purpose: the source already enforces uniqueness, and a unique index
in the sink could reject an intermediate state of a batch applied out of source order. Columns other than the key
are nullable: ``ALTER COLUMN ... DROP NOT NULL`` on the source sends nothing through the WAL, and a sink NOT NULL
would then reject the source's next row. Generated columns of sources older than PostgreSQL 18 are generated in
the sink with the source's expression (their values are never in the WAL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.interface import EngineError
from airflow_connectors.cdc.engine.plan import GeneratedColumn, TablePlan


def table_ident(plan: TablePlan) -> sql.Identifier:
    return sql.Identifier(plan.sink_schema, plan.sink_table)


@contextmanager
def serialized_ddl(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One transaction holding the sink's DDL lock: ``CREATE ... IF NOT EXISTS`` is not safe against a concurrent
    twin (two connectors' first runs into one sink would fail with UniqueViolation), so creators take turns."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('airflow_connectors.sink_ddl'))")
        yield


def create_table(conn: psycopg.Connection[Any], plan: TablePlan) -> bool:
    """Create the sink table if it does not exist (an existing one is kept: runs resume, drift is handled later);
    whether it was created."""
    with serialized_ddl(conn):
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(plan.sink_schema)))
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table_ident(plan).as_string(conn),)).fetchone()
        if exists == (True,):
            return False
        _create_table(conn, plan)
        return True


def _create_table(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sink_type)) for c in plan.columns]
    columns += [_generated(plan, column) for column in plan.generated]
    if plan.key:
        columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, plan.key))))
    with _explained_generated(plan):
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(table_ident(plan), sql.SQL(", ").join(columns))
        )


def _generated(plan: TablePlan, column: GeneratedColumn) -> sql.Composed:
    return sql.SQL("{} {} GENERATED ALWAYS AS ({}) STORED").format(
        sql.Identifier(column.name), sql.SQL(column.sink_type), sql.SQL(column.expression)
    )


@contextmanager
def _explained_generated(plan: TablePlan) -> Iterator[None]:
    """A generated column's expression may call functions only the source has: say so, with the remedy."""
    try:
        yield
    except (psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedObject, psycopg.errors.UndefinedColumn) as exc:
        if not plan.generated:
            raise
        names = ", ".join(repr(column.name) for column in plan.generated)
        raise EngineError(
            f"{plan.name}: the sink cannot compute generated column(s) {names} with the source's expression "
            f"({str(exc).strip().splitlines()[0]}): create what it uses in the sink database, or leave the "
            "column(s) out with the catalog's exclude_columns"
        ) from None


def sink_columns(conn: psycopg.Connection[Any], plan: TablePlan) -> dict[str, tuple[str, bool, bool]]:
    """The sink table's columns: name -> (format_type spelling, generated, NOT NULL)."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '', a.attnotnull"
        " FROM pg_attribute a WHERE a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
        " AND a.attnum > 0 AND NOT a.attisdropped",
        (plan.sink_schema, plan.sink_table),
    ).fetchall()
    return {name: (sink_type, generated, not_null) for name, sink_type, generated, not_null in rows}


def conform(conn: psycopg.Connection[Any], plan: TablePlan, *, drop_others: bool) -> None:
    """Give an emptied, keyless sink table exactly the plan's columns before it is copied again (cheap: no rows).
    Columns the plan lacks are dropped with ``drop_others``, else kept as plain nullable columns."""
    wanted = {column.name: (column.sink_type, False) for column in plan.columns}
    wanted |= {column.name: (column.sink_type, True) for column in plan.generated}
    target = table_ident(plan)

    def alter(action: str, name: str, *args: sql.Composable) -> None:
        conn.execute(sql.SQL("ALTER TABLE {} " + action).format(target, sql.Identifier(name), *args))

    for name, (sink_type, generated, not_null) in sink_columns(conn, plan).items():
        if name not in wanted:
            if drop_others:
                alter("DROP COLUMN {}", name)
            elif generated:  # kept: its values stay as they are
                alter("ALTER COLUMN {} DROP EXPRESSION", name)
            elif not_null:
                alter("ALTER COLUMN {} DROP NOT NULL", name)
        elif generated or wanted[name][1]:
            if (sink_type, generated) != wanted[name]:
                alter("DROP COLUMN {}", name)  # added again below, generated or not
        else:
            if sink_type != wanted[name][0]:
                alter("ALTER COLUMN {} TYPE {} USING NULL", name, sql.SQL(wanted[name][0]))
            if not_null:
                alter("ALTER COLUMN {} DROP NOT NULL", name)
    existing = sink_columns(conn, plan)
    for column in plan.columns:
        if column.name not in existing:
            alter("ADD COLUMN {} {}", column.name, sql.SQL(column.sink_type))
    for generated_column in plan.generated:
        if generated_column.name not in existing:
            with _explained_generated(plan):
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(target, _generated(plan, generated_column)))


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


def set_key(conn: psycopg.Connection[Any], plan: TablePlan, *, previous_key: tuple[str, ...]) -> None:
    """The source's key changed (a new primary key, another replica identity index, or none): the sink's follows,
    and the old key's columns may hold NULLs from now on."""
    drop_key(conn, plan)
    existing = sink_columns(conn, plan)
    for name in previous_key:
        if name not in plan.key and name in existing and existing[name][2]:
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(table_ident(plan), sql.Identifier(name))
            )
    add_key(conn, plan)


def add_key(conn: psycopg.Connection[Any], plan: TablePlan) -> None:
    if plan.key:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                table_ident(plan), sql.SQL(", ").join(map(sql.Identifier, plan.key))
            )
        )
