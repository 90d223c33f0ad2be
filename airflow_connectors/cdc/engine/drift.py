"""Schema drift: a Relation message whose columns differ from the table's plan, handled per ``migration_strategy``.

Added columns are added to the sink table (``apply``) or fail the run; dropped columns are kept (``keep``: the sink
column stays and new rows leave it NULL), dropped (``apply``) or fail the run; a column whose type changed fails the
run with the remedy (``fail``) or is converted (``apply``). The plan that comes back maps the Relation's columns to
the sink's, so the rows that follow are applied with the new shape.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.connectors.models import CatalogTable, MigrationStrategy
from airflow_connectors.cdc.engine.interface import EngineError, TransientEngineError
from airflow_connectors.cdc.engine.pgoutput import Relation
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from airflow_connectors.cdc.engine.sink_schema import table_ident
from airflow_connectors.cdc.engine.source_catalog import column_type


class _Migration:
    """The three kinds of column change, each applied to the sink table or refused, as the strategy says."""

    def __init__(self, sink: psycopg.Connection[Any], plan: TablePlan, strategy: MigrationStrategy) -> None:
        self.sink, self.plan, self.strategy, self.target = sink, plan, strategy, table_ident(plan)

    def add(self, name: str, source_type: str, sink_type: str) -> None:
        if self.strategy.added_columns == "fail":
            raise EngineError(
                f"{self.plan.name}: column {name!r} ({source_type}) was added on the source and "
                "migration_strategy.added_columns is 'fail'; set it to 'apply' or add the column to the sink"
            )
        self.sink.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                self.target, sql.Identifier(name), sql.SQL(sink_type)
            )
        )

    def retype(self, name: str, old_type: str, source_type: str, sink_type: str) -> None:
        if self.strategy.retyped_columns == "fail":
            raise EngineError(
                f"{self.plan.name}: column {name!r} changed type from {old_type} to {source_type} on the source and "
                "migration_strategy.retyped_columns is 'fail'; set it to 'apply', or alter the sink column yourself "
                "and resync the table"
            )
        self.sink.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::text::{}").format(
                self.target, sql.Identifier(name), sql.SQL(sink_type), sql.Identifier(name), sql.SQL(sink_type)
            )
        )

    def drop(self, name: str, not_null: bool) -> None:
        if name in self.plan.key:
            raise EngineError(f"{self.plan.name}: key column {name!r} was dropped on the source; resync the table")
        if self.strategy.dropped_columns == "fail":
            raise EngineError(
                f"{self.plan.name}: column {name!r} is no longer replicated from the source and "
                "migration_strategy.dropped_columns is 'fail'; set it to 'keep' or 'apply'"
            )
        if self.strategy.dropped_columns == "apply":
            self.sink.execute(
                sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS {}").format(self.target, sql.Identifier(name))
            )
        elif not_null:  # keep: new rows leave it NULL
            self.sink.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(self.target, sql.Identifier(name))
            )


def reconcile(
    relation: Relation,
    plan: TablePlan,
    *,
    entry: CatalogTable,
    migration: MigrationStrategy,
    source: psycopg.Connection[Any],
    sink: psycopg.Connection[Any],
    binary: bool = False,
) -> tuple[TablePlan, list[int]]:
    """The plan for this Relation (altering the sink as the strategy says) and, per plan column, its index in the
    Relation's rows."""
    names = [name for name, _, _, _ in relation.columns]
    wanted = set(entry.columns(names))
    current = {column.name: column for column in plan.columns}
    change = _Migration(sink, plan, migration)
    columns: list[ColumnPlan] = []
    for name, oid, typmod, _ in relation.columns:
        if name not in wanted:
            continue
        known = current.get(name)
        if known is None or known.type_oid != oid:
            source_type, sink_type, safe = column_type(source, oid, typmod)
            if binary and not safe:
                # Its binary form embeds a type oid: the next attempt re-plans and streams this table as text.
                raise TransientEngineError(f"{plan.name}: column {name!r} ({source_type}) needs the text format")
        if known is None:
            change.add(name, source_type, sink_type)
            columns.append(ColumnPlan(name, source_type, sink_type, oid, False))
        elif known.type_oid != oid:
            change.retype(name, known.source_type, source_type, sink_type)
            columns.append(replace(known, source_type=source_type, sink_type=sink_type, type_oid=oid))
        else:
            columns.append(known)
    for name, column in current.items():
        if name not in names:
            change.drop(name, column.not_null)
    new_plan = plan if tuple(columns) == plan.columns else replace(plan, columns=tuple(columns))
    return new_plan, [names.index(column.name) for column in columns]


def align_sink_table(sink: psycopg.Connection[Any], plan: TablePlan, migration: MigrationStrategy) -> None:
    """At run start: bring an existing sink table in line with the source's current columns (the Relation
    messages of the stream do the same for changes made while it runs)."""
    rows = sink.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a"
        " WHERE a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND a.attnum > 0"
        " AND NOT a.attisdropped",
        (plan.sink_schema, plan.sink_table),
    ).fetchall()
    existing = {name: (sink_type, not_null) for name, sink_type, not_null in rows}
    change = _Migration(sink, plan, migration)
    for column in plan.columns:
        if column.name not in existing:
            change.add(column.name, column.source_type, column.sink_type)
        elif existing[column.name][0] != column.sink_type:  # both are format_type() spellings
            change.retype(column.name, existing[column.name][0], column.source_type, column.sink_type)
    wanted = set(plan.column_names)
    for name, (_, not_null) in existing.items():
        if name not in wanted:
            change.drop(name, not_null)
