"""The SQL that applies a batch to the sink, as pure functions from a table plan to ``sql.Composed``.

No connection is needed to build these (PeerDB's habit: SQL generators unit-tested without a database); the
:class:`~airflow_connectors.cdc.engine.apply.Applier` executes them. The staging table holds, per change, its op
(``I`` / ``U`` / ``D``), the values ``v0..vn`` and one "unchanged TOAST" flag ``u0..un`` per value.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.sink_schema import table_ident

MERGE_MIN_SERVER_VERSION = 150000


def stage_name(plan: TablePlan, binary: bool) -> sql.Identifier:
    """One staging table per table shape: a schema change (or the format) gets a new one."""
    shape = (plan.name, tuple(column.sink_type for column in plan.columns), binary)
    return sql.Identifier(f"stage_{hashlib.sha256(repr(shape).encode()).hexdigest()[:16]}")


def create_stage(plan: TablePlan, stage: sql.Identifier, binary: bool) -> sql.Composed:
    """Binary staging columns have the sink's types (values spliced as sent); text ones are cast on apply."""
    columns: list[sql.Composable] = [sql.SQL('op "char"')]
    columns += [
        sql.SQL("{} {}").format(sql.Identifier(f"v{i}"), sql.SQL(column.sink_type if binary else "text"))
        for i, column in enumerate(plan.columns)
    ]
    columns += [sql.SQL("{} boolean").format(sql.Identifier(f"u{i}")) for i in range(len(plan.columns))]
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({})").format(stage, sql.SQL(", ").join(columns))


def copy_into_stage(stage: sql.Identifier, binary: bool) -> sql.Composed:
    return sql.SQL("COPY {} FROM STDIN{}").format(stage, sql.SQL(" (FORMAT BINARY)" if binary else ""))


def _value(plan: TablePlan, i: int, binary: bool) -> sql.Composable:
    if binary:  # staged in the sink's own types already
        return sql.SQL("s.{}").format(sql.Identifier(f"v{i}"))
    return sql.SQL("s.{}::{}").format(sql.Identifier(f"v{i}"), sql.SQL(plan.columns[i].sink_type))


# A batch holds up to a few ten thousand keys, applied to a sink table of any size: probing the key index once per
# staged row is what every apply does (native's too). The planner, costing every page as uncached, instead hashes the
# whole sink table for each batch once it holds about a million rows: 17.2 s against 7.9 s for 20 batches of 50,000
# into 1M rows (PostgreSQL 18, measured), and worse as the table grows. Set before each table's batch (parameter:
# whether to probe), for the sink transaction: only where the key index exists (:data:`KEY_INDEX_EXISTS`), since
# without it the only plan left would scan the whole table once per staged row; otherwise back to the session's own.
PROBE_BY_KEY = sql.SQL(
    "SELECT set_config(name, CASE WHEN %s THEN 'off' ELSE reset_val END, true) FROM pg_settings"
    " WHERE name IN ('enable_hashjoin', 'enable_mergejoin')"
)
# Whether a sink table (parameters: schema, table, its key columns sorted) has a valid unique index on exactly its key.
KEY_INDEX_EXISTS = sql.SQL(
    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %s AND c.relname = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL"
    " AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a"
    "      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey[0:i.indnkeyatts - 1])) = %s::text[]"
    " AND NOT 0 = ANY (i.indkey[0:i.indnkeyatts - 1]))"
)


def keyed_apply(plan: TablePlan, stage: sql.Identifier, binary: bool, server_version: int) -> list[sql.Composed]:
    """The statements applying a staged batch of a keyed table: one MERGE on PostgreSQL 15+, else delete / update /
    insert. An update of a row the sink lacks (inserted earlier in the batch) inserts it; an unchanged TOAST value
    keeps the sink's."""
    target = table_ident(plan)
    index = {name: i for i, name in enumerate(plan.column_names)}
    key_match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = {}").format(sql.Identifier(name), _value(plan, index[name], binary)) for name in plan.key
    )
    assignments = [
        sql.SQL("{} = CASE WHEN s.{} THEN t.{} ELSE {} END").format(
            sql.Identifier(column.name), sql.Identifier(f"u{i}"), sql.Identifier(column.name), _value(plan, i, binary)
        )
        for i, column in enumerate(plan.columns)
        if column.name not in plan.key
    ]
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in plan.column_names)
    values = sql.SQL(", ").join(_value(plan, i, binary) for i in range(len(plan.columns)))
    if server_version >= MERGE_MIN_SERVER_VERSION:
        update = sql.SQL("UPDATE SET {}").format(sql.SQL(", ").join(assignments)) if assignments else None
        return [
            sql.SQL(
                "MERGE INTO {} AS t USING {} AS s ON {} WHEN MATCHED AND s.op = 'D' THEN DELETE"
                " WHEN MATCHED THEN {} WHEN NOT MATCHED AND s.op <> 'D' THEN INSERT ({}) VALUES ({})"
            ).format(target, stage, key_match, update or sql.SQL("DO NOTHING"), columns, values)
        ]
    statements = [sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE s.op = 'D' AND {}").format(target, stage, key_match)]
    if assignments:
        statements.append(
            sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE s.op = 'U' AND {}").format(
                target, sql.SQL(", ").join(assignments), stage, key_match
            )
        )
    conflict = sql.SQL(", ").join(sql.Identifier(name) for name in plan.key)
    updates = [
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name)) for name in plan.column_names if name not in plan.key
    ]
    on_conflict = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(updates)) if updates else sql.SQL("DO NOTHING")
    statements.append(
        sql.SQL(
            "INSERT INTO {} AS t ({}) SELECT {} FROM {} AS s WHERE s.op = 'I' OR (s.op = 'U' AND NOT EXISTS"
            " (SELECT 1 FROM {} AS t WHERE {})) ON CONFLICT ({}) {}"
        ).format(target, columns, values, stage, target, key_match, conflict, on_conflict)
    )
    return statements


def _one_row(plan: TablePlan) -> sql.Composed:
    """Whole-row match of one row through the text form of each value (types like json have no equality)."""
    match = sql.SQL(" AND ").join(
        sql.SQL("{}::text IS NOT DISTINCT FROM (%s::{})::text").format(
            sql.Identifier(column.name), sql.SQL(column.sink_type)
        )
        for column in plan.columns
    )
    return sql.SQL("ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)").format(table_ident(plan), match)


def unkeyed_delete(plan: TablePlan) -> sql.Composed:
    """Delete one row equal to the old values (parameters: the old values as text)."""
    return sql.SQL("DELETE FROM {} WHERE {}").format(table_ident(plan), _one_row(plan))


def unkeyed_update(plan: TablePlan) -> sql.Composed:
    """Update one row equal to the old values (parameters: the new values, then the old ones, as text)."""
    assign = sql.SQL(", ").join(
        sql.SQL("{} = %s::{}").format(sql.Identifier(column.name), sql.SQL(column.sink_type)) for column in plan.columns
    )
    return sql.SQL("UPDATE {} SET {} WHERE {}").format(table_ident(plan), assign, _one_row(plan))


def copy_into_table(plan: TablePlan) -> sql.Composed:
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in plan.column_names)
    return sql.SQL("COPY {} ({}) FROM STDIN").format(table_ident(plan), columns)


def truncate(plan: TablePlan) -> sql.Composed:
    return sql.SQL("TRUNCATE {}").format(table_ident(plan))
