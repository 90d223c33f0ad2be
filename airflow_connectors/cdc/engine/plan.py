"""What to replicate, per table: the source table, its sink twin, the columns and the key to match rows by."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    source_type: str  # format_type() on the source
    sink_type: str  # type in the sink DDL: enums -> text, domains -> their base type
    type_oid: int
    not_null: bool
    typmod: int = -1  # with type_oid, what a Relation message says of the column's type


@dataclass(frozen=True)
class GeneratedColumn:
    """A stored generated column of a source older than PostgreSQL 18, whose WAL never carries its values: the
    sink computes it with the source's expression (the expression is immutable, so the values are the source's)."""

    name: str
    sink_type: str
    expression: str


@dataclass(frozen=True)
class TablePlan:
    source_schema: str
    source_table: str
    sink_schema: str
    sink_table: str
    columns: tuple[ColumnPlan, ...]  # replicated columns, in source order
    key: tuple[str, ...]  # primary key columns; () when rows are matched by REPLICA IDENTITY FULL
    replica_identity: str  # pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing)
    relkind: str
    binary_safe: bool  # binary COPY would embed no type oid the sink may not share
    generated: tuple[GeneratedColumn, ...] = ()  # computed by the sink, never copied nor streamed

    @cached_property
    def name(self) -> str:
        return f"{self.source_schema}.{self.source_table}"

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @cached_property
    def key_positions(self) -> tuple[int, ...]:
        """Where the key columns sit in a row of this plan (computed once: it is used for every change)."""
        return tuple(self.column_names.index(name) for name in self.key)
