"""Schema drift, forward only: each sink table follows its source table's shape in source-commit order.

A Relation message is applied when the first change after it is (the stream holds it until then), and the
source's current catalog is used only when nothing older is left to replay (at a catch-up run's fence); a run never
aligns the sink to the current catalog first and then replays older Relation messages against it. Every change of
shape is judged by ``ddl_detect`` first: what the WAL cannot carry makes the table be copied again (the per-table
resync), what ``migration_strategy`` says to fail on fails the run naming the table and the remedy, and the rest is
applied to the sink table here: an added column is added (NULL in the existing rows, as on the source), a dropped
one kept (nullable) or dropped, a type changed without a table rewrite altered (the values stay the same), and the
sink's primary key follows the source's key or replica identity index.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.connectors.models import CatalogTable, MigrationStrategy
from airflow_connectors.cdc.engine import shapes
from airflow_connectors.cdc.engine.ddl_detect import TableFacts, Verdict, compare, table_facts
from airflow_connectors.cdc.engine.interface import EngineError, TransientEngineError
from airflow_connectors.cdc.engine.pgoutput import Relation
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from airflow_connectors.cdc.engine.sink_schema import set_key, sink_columns, table_ident
from airflow_connectors.cdc.engine.source_catalog import column_type, current_key


def relation_plan(
    relation: Relation,
    shape: TablePlan,
    *,
    entry: CatalogTable,
    source: psycopg.Connection[Any],
    binary: bool,
) -> TablePlan:
    """The plan a Relation message describes, built on the recorded shape (unchanged columns keep their plan)."""
    names = [name for name, _, _, _ in relation.columns]
    wanted = set(entry.columns(names))
    known = {column.name: column for column in shape.columns}
    columns: list[ColumnPlan] = []
    for name, oid, typmod, _ in relation.columns:
        if name not in wanted:
            continue
        column = known.get(name)
        if column is None or (column.type_oid, column.typmod) != (oid, typmod):
            source_type, sink_type, safe = column_type(source, oid, typmod)
            if binary and not safe:
                # Its binary form embeds a type oid: the next attempt re-plans and streams this table as text.
                raise TransientEngineError(f"{shape.name}: column {name!r} ({source_type}) needs the text format")
            column = ColumnPlan(name, source_type, sink_type, oid, False, typmod)
        columns.append(column)
    if relation.replica_identity == "f":
        # Every column is flagged: keep the key while the source still has it, else match whole rows.
        same = shape.key and set(shape.key) <= wanted
        key = shape.key if same and current_key(source, shape.source_schema, shape.source_table) == shape.key else ()
    else:
        key = tuple(name for name, _, _, is_key in relation.columns if is_key)
        excluded = [name for name in key if name not in wanted]
        if excluded:
            raise EngineError(f"catalog: {shape.name} excludes its key column {excluded[0]!r}")
    return replace(shape, columns=tuple(columns), key=key, replica_identity=relation.replica_identity)


def same_shape(a: TablePlan, b: TablePlan) -> bool:
    return (a.columns, a.key, a.replica_identity) == (b.columns, b.key, b.replica_identity)


class Drift:
    """Moves sink tables to new shapes (in the caller's sink transaction) and records them, or says why not."""

    def __init__(
        self,
        connector_id: str,
        strategy: MigrationStrategy,
        source: psycopg.Connection[Any],
        sink: psycopg.Connection[Any],
    ) -> None:
        self.connector_id, self.strategy, self.source, self.sink = connector_id, strategy, source, sink

    def facts(self, plan: TablePlan) -> TableFacts | None:
        return table_facts(self.source, plan.source_schema, plan.source_table)

    def judge(self, shape: shapes.Shape, new: TablePlan, facts: TableFacts | None) -> Verdict:
        """``compare``, raising the refusal when migration_strategy says to fail."""
        if facts is None:
            return Verdict(shape.plan.name, resync=["the table is no longer on the source under that name"])
        verdict = compare(shape.plan, shape.facts, new, facts, self.strategy)
        if verdict.refuse:
            raise EngineError(verdict.refusal())
        return verdict

    def relation(self, shape: shapes.Shape, new: TablePlan) -> tuple[shapes.Shape | None, Verdict]:
        """A Relation message's plan ``new`` for a table whose recorded shape is ``shape``: the new shape, applied
        to the sink, or None and the verdict saying why the table must be copied again."""
        facts = self.facts(shape.plan)
        verdict = self.judge(shape, new, facts)
        if not verdict.clean or facts is None:
            return None, verdict
        kept = {name: column for name, column in shape.facts.columns.items() if name not in shape.plan.column_names}
        columns = kept | {name: facts.columns[name] for name in new.column_names}
        columns |= {column.name: shape.facts.columns[column.name] for column in new.generated}
        moved = shapes.Shape(new, replace(shape.facts, columns=columns))
        self.move(shape, moved)
        return moved, verdict

    def align(self, shape: shapes.Shape, current: TablePlan, facts: TableFacts | None) -> tuple[bool, Verdict]:
        """At the fence, nothing older left to replay: bring the sink table to the source's current catalog.
        Returns (moved, verdict); a verdict that is not clean means: copy the table again."""
        verdict = self.judge(shape, current, facts)
        if not verdict.clean or facts is None:
            return False, verdict
        if same_shape(shape.plan, current) and shape.facts == facts:
            return False, verdict
        self.move(shape, shapes.Shape(current, facts))
        return True, verdict

    def move(self, old: shapes.Shape, new: shapes.Shape) -> None:
        """Alter the sink table from ``old`` to ``new`` (a change ``compare`` found clean) and record ``new``."""
        before, after = old.plan, new.plan
        target = table_ident(after)

        def alter(action: str, name: str, *args: sql.Composable) -> None:
            self.sink.execute(sql.SQL("ALTER TABLE {} " + action).format(target, sql.Identifier(name), *args))

        previous = {column.name: column for column in before.columns}
        in_sink = sink_columns(self.sink, after)
        for column in after.columns:
            was = previous.get(column.name)
            if was is None:
                if column.name in in_sink:  # a kept column of the same name: the new column starts out NULL
                    alter("DROP COLUMN {}", column.name)
                alter("ADD COLUMN {} {}", column.name, sql.SQL(column.sink_type))
            elif was.sink_type != column.sink_type or (was.type_oid, was.typmod) != (column.type_oid, column.typmod):
                # No rewrite on the source (ddl_detect): the values are unchanged, the cast is exact.
                alter("ALTER COLUMN {} TYPE {} USING {}::{}", column.name, sql.SQL(column.sink_type),
                      sql.Identifier(column.name), sql.SQL(column.sink_type))  # fmt: skip
        if self.strategy.dropped_columns == "apply":
            for name in previous.keys() - set(after.column_names):
                alter("DROP COLUMN IF EXISTS {}", name)
        if before.key != after.key:
            set_key(self.sink, after, previous_key=before.key)
        shapes.save(self.sink, self.connector_id, after, new.facts)
