"""The shape of each sink table as of the sink's checkpoint: the plan its rows follow and the source facts recorded
with it (``ddl_detect``). Kept in the sink and written in the transaction that changes the table, so the shape
moves forward with the data, in source-commit order; a later run compares the source with it instead of aligning
the sink to the source's current catalog (which older Relation messages would then undo)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.ddl_detect import TableFacts
from airflow_connectors.cdc.engine.naming import STATE_SCHEMA
from airflow_connectors.cdc.engine.plan import ColumnPlan, GeneratedColumn, TablePlan

_TABLE = sql.Identifier(STATE_SCHEMA, "table_shapes")
CREATE = sql.SQL(
    "CREATE TABLE IF NOT EXISTS {} (connector_id text, source_table text, shape jsonb NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (connector_id, source_table))"
).format(_TABLE)


@dataclass(frozen=True)
class Shape:
    plan: TablePlan
    facts: TableFacts


def _plan_from_json(data: dict[str, Any]) -> TablePlan:
    return TablePlan(
        **data
        | {
            "columns": tuple(ColumnPlan(**column) for column in data["columns"]),
            "key": tuple(data["key"]),
            "generated": tuple(GeneratedColumn(**column) for column in data["generated"]),
        }
    )


def save(conn: psycopg.Connection[Any], connector_id: str, plan: TablePlan, facts: TableFacts) -> None:
    """In the caller's transaction, with the sink change it describes."""
    document = json.dumps({"plan": asdict(plan), "facts": facts.to_json()})
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (connector_id, source_table, shape) VALUES (%s, %s, %s::jsonb)"
            " ON CONFLICT (connector_id, source_table) DO UPDATE SET shape = excluded.shape, updated_at = now()"
        ).format(_TABLE),
        (connector_id, plan.name, document),
    )


def load(conn: psycopg.Connection[Any], connector_id: str) -> dict[str, Shape]:
    rows = conn.execute(
        sql.SQL("SELECT source_table, shape FROM {} WHERE connector_id = %s").format(_TABLE), (connector_id,)
    ).fetchall()
    return {name: Shape(_plan_from_json(doc["plan"]), TableFacts.from_json(doc["facts"])) for name, doc in rows}


def forget(conn: psycopg.Connection[Any], connector_id: str, table: str | None = None) -> None:
    """Forget the shape of ``table``, or of every table of the connector."""
    if table is None:
        conn.execute(sql.SQL("DELETE FROM {} WHERE connector_id = %s").format(_TABLE), (connector_id,))
    else:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE connector_id = %s AND source_table = %s").format(_TABLE),
            (connector_id, table),
        )
