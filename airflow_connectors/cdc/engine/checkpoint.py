"""Progress kept in the sink, next to the data it describes, so that a batch and its position commit together.

``checkpoints``: per connector, the source LSN up to which every change is in the sink (restart point).
``table_states``: per table, ``snapshotting`` until its copy committed, then ``ready``; ``skip_until`` is the LSN
of the snapshot a resynced table was copied at (the stream skips that table's older changes). ``stale``: a change
the WAL cannot carry was seen (the next run copies the table again, whatever happened to this one); ``orphaned``:
the source table is no longer replicated and its sink table was kept (``migration_strategy.dropped_tables``).
``table_shapes``: see ``shapes``.
``sink_names``: per connector and target schema, the sink table each source table was given (``sink_names.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine import shapes
from airflow_connectors.cdc.engine.naming import STATE_SCHEMA
from airflow_connectors.cdc.engine.sink_schema import serialized_ddl

_SCHEMA = sql.Identifier(STATE_SCHEMA)
# Serialises the DDL below between connectors starting their first run into one sink at the same moment
# (CREATE ... IF NOT EXISTS alone races: both see "missing", one fails on the catalog's unique index).


@dataclass(frozen=True)
class TableState:
    state: str  # snapshotting | ready
    skip_until: str | None


def ensure_state_schema(conn: psycopg.Connection[Any]) -> None:
    with serialized_ddl(conn):
        _create_state_tables(conn)


def _create_state_tables(conn: psycopg.Connection[Any]) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_SCHEMA))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.checkpoints (connector_id text PRIMARY KEY, lsn pg_lsn NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        ).format(_SCHEMA)
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.table_states (connector_id text, source_table text, state text NOT NULL,"
            " skip_until pg_lsn, updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (connector_id, source_table))"
        ).format(_SCHEMA)
    )
    conn.execute(shapes.CREATE)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.sink_names (connector_id text, sink_schema text, source_schema text,"
            " source_table text, sink_table text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (connector_id, sink_schema, source_schema, source_table),"
            " UNIQUE (connector_id, sink_schema, sink_table))"
        ).format(_SCHEMA)
    )


def read_checkpoint(conn: psycopg.Connection[Any], connector_id: str) -> str | None:
    row = conn.execute(
        sql.SQL("SELECT lsn::text FROM {}.checkpoints WHERE connector_id = %s").format(_SCHEMA), (connector_id,)
    ).fetchone()
    return str(row[0]) if row else None


def write_checkpoint(conn: psycopg.Connection[Any], connector_id: str, lsn: str) -> None:
    """In the caller's transaction: the batch applied with it commits or rolls back together with it."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.checkpoints (connector_id, lsn) VALUES (%s, %s::pg_lsn) ON CONFLICT (connector_id)"
            " DO UPDATE SET lsn = greatest(checkpoints.lsn, excluded.lsn), updated_at = now()"
        ).format(_SCHEMA),
        (connector_id, lsn),
    )


def table_states(conn: psycopg.Connection[Any], connector_id: str) -> dict[str, TableState]:
    rows = conn.execute(
        sql.SQL("SELECT source_table, state, skip_until::text FROM {}.table_states WHERE connector_id = %s").format(
            _SCHEMA
        ),
        (connector_id,),
    ).fetchall()
    return {name: TableState(state, skip) for name, state, skip in rows}


def set_table_state(
    conn: psycopg.Connection[Any], connector_id: str, table: str, state: str, skip_until: str | None = None
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.table_states (connector_id, source_table, state, skip_until) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (connector_id, source_table) DO UPDATE SET state = excluded.state,"
            " skip_until = excluded.skip_until, updated_at = now()"
        ).format(_SCHEMA),
        (connector_id, table, state, skip_until),
    )


def forget(conn: psycopg.Connection[Any], connector_id: str) -> None:
    """Start over (full resync): no checkpoint, no table state, no recorded shape."""
    for table in ("checkpoints", "table_states", "table_shapes"):
        conn.execute(
            sql.SQL("DELETE FROM {}.{} WHERE connector_id = %s").format(_SCHEMA, sql.Identifier(table)),
            (connector_id,),
        )
