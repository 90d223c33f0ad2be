"""What changed on a source table since the sink's shape was recorded, and whether the WAL carries it.

Some DDL makes the sink's rows wrong without one row change in the WAL: a column added with a default (its value
is read from ``pg_attribute.attmissingval``) or as a generated or identity column, a table rewrite (``ALTER TYPE
... USING``, a volatile default), a column renamed, or dropped and added again under its name, a column newly
selected by the catalog, an enum label renamed or a composite type changed, partitions attached or detached, a
table dropped and created again. They are found by comparing the source catalog with the facts recorded with the
sink's shape (column ``attnum``\s, the relfilenodes of the table or its leaf partitions, enum labels, composite
type attributes): the table is then copied again, or the run refused where ``migration_strategy`` says ``fail``.
Everything else (a nullable column added without a default, a dropped column, a key or replica identity change, a
type change that did not rewrite the table) reaches the sink in source-commit order: with the Relation message of
the table's next change, or at the fence when none follows.

A rewrite is recognised by its new relfilenode, which ``TRUNCATE``, ``VACUUM FULL`` and ``CLUSTER`` give too: such
a table is re-copied although nothing was lost (the price of never missing an ``ALTER TYPE ... USING``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from airflow_connectors.cdc.connectors.models import MigrationStrategy
from airflow_connectors.cdc.engine.plan import TablePlan


@dataclass(frozen=True)
class ColumnFacts:
    attnum: int
    missing: bool  # atthasmissing: existing rows read a value the WAL never carried
    generated: bool
    identity: bool
    # "oid:label" of the column's enum type and "attribute:name:type" of its composite type (or of its array's /
    # domain's): a label renamed or an attribute changed alters every value's text without a row change
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableFacts:
    oid: int
    storage: tuple[tuple[int, int], ...]  # (oid, relfilenode) of the table, or of each leaf of a partitioned root
    columns: dict[str, ColumnFacts] = field(default_factory=dict)  # every column of the source table

    def to_json(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "storage": [list(pair) for pair in self.storage],
            "columns": {name: vars(facts) | {"labels": list(facts.labels)} for name, facts in self.columns.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableFacts:
        columns = {
            name: ColumnFacts(**(facts | {"labels": tuple(facts["labels"])})) for name, facts in data["columns"].items()
        }
        return cls(int(data["oid"]), tuple((int(a), int(b)) for a, b in data["storage"]), columns)


_FACTS = """
SELECT c.oid::bigint,
       ARRAY(SELECT ARRAY[l.relid::oid::bigint, coalesce(pg_relation_filenode(l.relid), 0)::bigint]
             FROM (SELECT relid FROM pg_partition_tree(c.oid) WHERE isleaf UNION SELECT c.oid WHERE c.relkind = 'r') l
             ORDER BY 1),
       ARRAY(SELECT json_build_array(a.attname, a.attnum, a.atthasmissing, a.attgenerated <> '', a.attidentity <> '',
                    ARRAY(SELECT e.oid::text || ':' || e.enumlabel FROM pg_enum e
                          WHERE e.enumtypid IN (t.oid, t.typelem, t.typbasetype) ORDER BY e.enumsortorder)
                    || ARRAY(SELECT 'attribute:' || ca.attname || ':' || format_type(ca.atttypid, ca.atttypmod)
                             FROM pg_type ct JOIN pg_attribute ca ON ca.attrelid = ct.typrelid
                             WHERE ct.oid IN (t.oid, t.typelem, t.typbasetype) AND ct.typtype = 'c'
                               AND ca.attnum > 0 AND NOT ca.attisdropped ORDER BY ca.attnum))::text
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""


def table_facts(conn: psycopg.Connection[Any], schema: str, table: str) -> TableFacts | None:
    """The facts of ``schema.table`` now, or None when the source has no such table."""
    row = conn.execute(_FACTS, (schema, table)).fetchone()
    if row is None:
        return None
    columns = {}
    for item in row[2]:
        name, attnum, missing, generated, identity, labels = json.loads(item)
        columns[name] = ColumnFacts(attnum, missing, generated, identity, tuple(labels))
    return TableFacts(int(row[0]), tuple((int(a), int(b)) for a, b in row[1]), columns)


@dataclass
class Verdict:
    """What comparing a recorded shape with the source says: re-copy the table (``resync``: what the WAL cannot
    carry) and / or refuse the run (``refuse``: a change ``migration_strategy`` says to fail on)."""

    table: str
    resync: list[str] = field(default_factory=list)
    refuse: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.resync and not self.refuse

    def refusal(self) -> str:
        return f"{self.table}: " + "; ".join(self.refuse)

    def reason(self) -> str:
        return f"{self.table}: " + "; ".join(self.resync)


def _types(plan: TablePlan) -> dict[str, tuple[int, str, bool]]:
    """name -> (type oid, source type, generated in the sink) of every column the plan replicates."""
    types = {column.name: (column.type_oid, column.source_type, False) for column in plan.columns}
    return types | {column.name: (0, column.sink_type, True) for column in plan.generated}


def compare(
    old: TablePlan, old_facts: TableFacts, new: TablePlan, new_facts: TableFacts, strategy: MigrationStrategy
) -> Verdict:
    """Compare the recorded shape (``old``) with what the source says now (``new``)."""
    verdict = Verdict(old.name)
    if (old.sink_schema, old.sink_table) != (new.sink_schema, new.sink_table):
        verdict.resync.append(f"its sink table is now {new.sink_schema}.{new.sink_table}")
    if new_facts.oid != old_facts.oid:
        verdict.resync.append("the table was dropped and created again")
        return verdict
    if new_facts.storage != old_facts.storage:
        what = "partitions were attached or detached" if new.relkind == "p" else "the table was rewritten"
        verdict.resync.append(
            f"{what} (ALTER TYPE ... USING, a volatile default, ATTACH / DETACH PARTITION, TRUNCATE, VACUUM FULL or "
            "CLUSTER: rows changed without row changes in the WAL)"
        )
    old_types, new_types = _types(old), _types(new)
    old_names = {old_facts.columns[name].attnum: name for name in old_types if name in old_facts.columns}
    for name, (oid, source_type, generated) in new_types.items():
        facts = new_facts.columns.get(name)
        if facts is None:  # only for a plan built from a Relation message: the source has no such column now
            verdict.resync.append(f"column {name!r} is no longer on the source under that name")
            continue
        before = old_names.get(facts.attnum)
        if before is None:
            if name in old_types:
                verdict.resync.append(f"column {name!r} was dropped and added again")
            elif facts.attnum in {f.attnum for f in old_facts.columns.values()}:
                verdict.resync.append(f"column {name!r} is newly selected by the catalog")
            elif strategy.added_columns == "fail":
                verdict.refuse.append(
                    f"column {name!r} ({source_type}) was added on the source and migration_strategy.added_columns "
                    "is 'fail'; set it to 'apply', or add the column to the sink and resync the table"
                )
            elif facts.missing or facts.generated or facts.identity:
                kind = "a generated" if facts.generated else "an identity" if facts.identity else "a default"
                verdict.resync.append(f"column {name!r} was added with {kind} value for the existing rows")
        elif before != name:
            verdict.resync.append(f"column {before!r} was renamed to {name!r}")
        else:
            old_oid, old_type, old_generated = old_types[name]
            if generated != old_generated or facts.generated != old_facts.columns[name].generated:
                verdict.resync.append(f"column {name!r} became or stopped being a generated column")
            elif (oid, source_type) != (old_oid, old_type):
                if strategy.retyped_columns == "fail":
                    verdict.refuse.append(
                        f"column {name!r} changed type from {old_type} to {source_type} on the source and "
                        "migration_strategy.retyped_columns is 'fail'; set it to 'apply' (the table is copied again "
                        "when the change rewrote it), or alter the sink column yourself and resync the table"
                    )
            old_labels, new_labels = set(old_facts.columns[name].labels), set(facts.labels)
            if not old_labels <= new_labels:  # an enum may gain labels: the existing values stay the same
                verdict.resync.append(f"a label of column {name!r}'s type was renamed or an attribute changed")
            elif {x for x in new_labels - old_labels if x.startswith("attribute:")}:
                verdict.resync.append(f"an attribute was added to column {name!r}'s composite type")
    if strategy.dropped_columns == "fail":
        gone = sorted(name for name in old_types if name not in new_types)
        renamed = {old_names.get(new_facts.columns[n].attnum) for n in new_types if n in new_facts.columns}
        for name in gone:
            if name not in renamed:
                verdict.refuse.append(
                    f"column {name!r} is no longer replicated from the source and "
                    "migration_strategy.dropped_columns is 'fail'; set it to 'keep' or 'apply'"
                )
    return verdict
