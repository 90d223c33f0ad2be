"""Read the source's catalog into table plans: which tables, which columns and types, which key.

Honours the connector's ``catalog`` (schemas / tables / include or exclude columns), ``partitions_as_root`` (replicate
a partitioned table as its root, or its leaf partitions one by one) and each table's key: the primary key, else the
replica identity index, else REPLICA IDENTITY FULL (whole-row matching); a table with none of them cannot have its
updates and deletes replicated, which is a clear error naming the remedy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg

from airflow_connectors.cdc.connectors.models import PostgresSource
from airflow_connectors.cdc.engine.interface import EngineError
from airflow_connectors.cdc.engine.naming import STATE_SCHEMA
from airflow_connectors.cdc.engine.plan import ColumnPlan, GeneratedColumn, TablePlan
from airflow_connectors.cdc.sink_naming import SourceTable

NameTables = Callable[[Sequence[SourceTable]], Mapping[SourceTable, str]]

FIRST_USER_OID = 16384  # oids below are built into every PostgreSQL server

_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relreplident::text, c.relispartition,
       rn.nspname AS root_schema, rc.relname AS root_table
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', %(state)s)
  AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.attnotnull,
       t.typtype::text, format_type(t.typbasetype, t.typtypmod), t.typcategory::text,
       t.typelem, coalesce(et.typtype::text, ''), coalesce(et.oid, 0),
       a.atttypmod, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

# pgoutput sends stored generated columns from PostgreSQL 18 on (publish_generated_columns); before, the sink
# computes them.
GENERATED_IN_WAL_VERSION = 180000

_KEY = """
SELECT i.indisprimary, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND (i.indisprimary OR i.indisreplident)
GROUP BY i.indexrelid, i.indisprimary, i.indisreplident
ORDER BY i.indisreplident DESC, i.indisprimary DESC
LIMIT 1
"""


def _sink_type(row: tuple[Any, ...]) -> tuple[str, bool]:
    """(type for the sink DDL, whether binary COPY of it is safe between two servers)."""
    _, source_type, oid, _, typtype, base_type, category, elem, elem_typtype, elem_oid = row[:10]
    if typtype == "e":
        return "text", True  # an enum's binary form is its label, as text's
    if typtype == "d":
        return base_type, True  # a domain's binary form is its base type's
    if typtype == "c":
        return "text", False
    if category == "A" and elem_oid >= FIRST_USER_OID:
        return ("text[]" if elem_typtype == "e" else source_type), False  # arrays embed their element type's oid
    return source_type, True


_TYPE = """
SELECT NULL, format_type(t.oid, %s), t.oid, false,
       t.typtype::text, format_type(t.typbasetype, t.typtypmod), t.typcategory::text,
       t.typelem, coalesce(et.typtype::text, ''), coalesce(et.oid, 0)
FROM pg_type t
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE t.oid = %s
"""


def column_type(conn: psycopg.Connection[Any], oid: int, typmod: int) -> tuple[str, str, bool]:
    """(source type, sink type, binary safe) of a type seen in a Relation message (a column added or retyped)."""
    row = conn.execute(_TYPE, (typmod, oid)).fetchone()
    if row is None:
        raise EngineError(f"unknown column type oid {oid} on the source")
    sink_type, safe = _sink_type(row)
    return str(row[1]), sink_type, safe


def current_key(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[str, ...]:
    """The key a plan of ``schema.table`` would have now: its replica identity index, else its primary key."""
    row = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
        " AND c.relname = %s",
        (schema, table),
    ).fetchone()
    return table_key(conn, row[0]) if row else ()


def table_key(conn: psycopg.Connection[Any], oid: int) -> tuple[str, ...]:
    """The key rows of table ``oid`` are matched by: its replica identity index, else its primary key; () if none."""
    key_row = conn.execute(_KEY, (oid,)).fetchone()
    return tuple(key_row[1]) if key_row else ()


# (oid, schema, table, relkind, relreplident) of a table the connector's catalog selects.
SelectedTable = tuple[int, str, str, str, str]


def selected_tables(
    conn: psycopg.Connection[Any], source: PostgresSource, *, skip_schema: str | None = None
) -> tuple[list[SelectedTable], list[str]]:
    """The tables the catalog selects (leaf partitions or their roots, as ``partitions_as_root`` says), and the
    tables it names that the source does not have. The one reading of which tables a connector replicates: the
    engine plans them, validation checks them."""
    selected: list[SelectedTable] = []
    seen: set[tuple[str, str]] = set()
    for oid, schema, table, relkind, ident, is_partition, root_schema, root_table in conn.execute(
        _TABLES, {"state": STATE_SCHEMA}
    ):
        seen.add((schema, table))
        if schema == skip_schema:
            continue
        if source.partitions_as_root:
            if is_partition:
                continue
        elif relkind == "p":
            continue
        if not (source.catalog.selects(schema, table) or source.catalog.selects(root_schema, root_table)):
            continue
        selected.append((oid, schema, table, relkind, ident))
    missing = [
        f"{schema}.{table}"
        for schema, entry in source.catalog.schemas.items()
        for table in entry.tables
        if (schema, table) not in seen
    ]
    return selected, missing


def build_plans(
    conn: psycopg.Connection[Any],
    source: PostgresSource,
    target_schema: str,
    name_tables: NameTables,
    *,
    skip_schema: str | None = None,
) -> dict[str, TablePlan]:
    """Plans of every table the catalog selects, keyed by ``schema.table`` of the source. ``name_tables`` gives their
    sink tables (``sink_names.resolve``). ``skip_schema``: a schema whose tables are never sources (the sink's own,
    when source and sink are one database)."""
    candidates, missing = selected_tables(conn, source, skip_schema=skip_schema)
    if missing:  # a typo must not quietly replicate nothing
        raise EngineError(f"catalog: table {missing[0]} does not exist on the source")
    if not candidates:
        hint = (
            f"; the tables of {skip_schema!r}, the sink's target_schema in this same database, are never sources"
            if skip_schema
            else " (check catalog.schemas and the tables' names)"
        )
        raise EngineError(f"the catalog selects no table on the source{hint}")
    sink_tables = name_tables([(schema, table) for _, schema, table, _, _ in candidates])
    generated_in_wal = conn.info.server_version >= GENERATED_IN_WAL_VERSION
    plans: dict[str, TablePlan] = {}
    for oid, schema, table, relkind, ident in candidates:
        rows = conn.execute(_COLUMNS, (oid,)).fetchall()
        entry = source.catalog.table(schema, table)
        wanted = set(entry.columns([row[0] for row in rows]))
        unknown = set(entry.include_columns or []) | set(entry.exclude_columns or [])
        unknown -= {row[0] for row in rows}
        if unknown:
            raise EngineError(f"catalog: {schema}.{table} has no column {sorted(unknown)[0]!r}")
        columns, generated, binary_safe = [], [], True
        for row in rows:
            if row[0] not in wanted:
                continue
            sink_type, safe = _sink_type(row)
            if row[11] == "s" and not generated_in_wal:
                generated.append(GeneratedColumn(row[0], sink_type, str(row[12])))
                continue
            binary_safe &= safe
            columns.append(ColumnPlan(row[0], row[1], sink_type, int(row[2]), bool(row[3]), int(row[10])))
        key = table_key(conn, oid)
        if not key and ident != "f":
            raise EngineError(
                f"table {schema}.{table} has no primary key and no REPLICA IDENTITY FULL, so its updates and deletes "
                f"cannot be replicated: add a primary key, or run ALTER TABLE {schema}.{table} REPLICA IDENTITY FULL"
            )
        missing_key = [name for name in key if name not in wanted]
        if missing_key:
            raise EngineError(f"catalog: {schema}.{table} excludes its key column {missing_key[0]!r}")
        plans[f"{schema}.{table}"] = TablePlan(
            source_schema=schema,
            source_table=table,
            sink_schema=target_schema,
            sink_table=sink_tables[(schema, table)],
            columns=tuple(columns),
            key=key,
            replica_identity=ident,
            relkind=relkind,
            binary_safe=binary_safe,
            generated=tuple(generated),
        )
    return plans


def secondary_indexes(conn: psycopg.Connection[Any], plan: TablePlan) -> list[tuple[str, str, tuple[str, ...]]]:
    """(index name, access method, columns) of the source table's plain-column, non-key indexes."""
    rows = conn.execute(
        """
        SELECT ic.relname, am.amname, array_agg(a.attname ORDER BY k.ord)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass
          AND NOT i.indisprimary AND i.indexprs IS NULL AND i.indpred IS NULL
        GROUP BY ic.relname, am.amname
        HAVING bool_and(k.attnum > 0)
        """,
        (plan.source_schema, plan.source_table),
    ).fetchall()
    wanted = set(plan.column_names)
    return [(name, method, tuple(cols)) for name, method, cols in rows if set(cols) <= wanted]
