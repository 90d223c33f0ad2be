"""Sink table names as recorded in the sink (``_airflow_connectors.sink_names``), named by ``cdc/sink_naming.py``.

Recorded, not recomputed, so a table's sink table never changes when other tables appear or disappear. A changed
explicit ``sink_table`` renames the sink table (the data is kept) when the new name is free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.connectors.models import Catalog
from airflow_connectors.cdc.engine.interface import EngineError
from airflow_connectors.cdc.engine.naming import STATE_SCHEMA
from airflow_connectors.cdc.sink_naming import SinkNameClash, SourceTable, assign, catalog_field

_TABLE = sql.Identifier(STATE_SCHEMA, "sink_names")


def recorded(conn: psycopg.Connection[Any], connector_id: str, sink_schema: str) -> dict[SourceTable, str]:
    rows = conn.execute(
        sql.SQL(
            "SELECT source_schema, source_table, sink_table FROM {} WHERE connector_id = %s AND sink_schema = %s"
        ).format(_TABLE),
        (connector_id, sink_schema),
    ).fetchall()
    return {(schema, table): name for schema, table, name in rows}


def resolve(
    conn: psycopg.Connection[Any], connector_id: str, sink_schema: str, tables: Sequence[SourceTable], catalog: Catalog
) -> dict[SourceTable, str]:
    """The sink table of each of ``tables``: recorded ones kept, new ones named and recorded (one transaction)."""
    with conn.transaction():
        before = recorded(conn, connector_id, sink_schema)
        try:
            names = assign(tables, catalog.sink_tables(), before)
        except SinkNameClash as exc:
            raise EngineError(f"{catalog_field(exc.table)}: {exc}") from None
        # Renames first: a name a rename frees may be the one a new table was just given.
        for table, name in sorted(names.items(), key=lambda item: item[0] not in before):
            old = before.get(table)
            if old == name:
                continue
            if old is not None:
                _rename(conn, sink_schema, old, name, field=catalog_field(table))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (connector_id, sink_schema, source_schema, source_table, sink_table)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (connector_id, sink_schema, source_schema, source_table)"
                    " DO UPDATE SET sink_table = excluded.sink_table"
                ).format(_TABLE),
                (connector_id, sink_schema, *table, name),
            )
    return names


def _rename(conn: psycopg.Connection[Any], schema: str, old: str, new: str, *, field: str) -> None:
    exists = "SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) IS NOT NULL"
    if conn.execute(exists, (schema, new)).fetchone() == (True,):
        raise EngineError(f"{field}: the sink table {schema}.{new} already exists; drop it or choose another name")
    if conn.execute(exists, (schema, old)).fetchone() == (True,):
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema, old), sql.Identifier(new)))
