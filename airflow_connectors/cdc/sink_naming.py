"""The one rule that names sink tables (the engine records its result in the sink; everyone else reads that).

A table seen for the first time is named: its catalog ``sink_table`` if given; else its own name when no other
replicated (or recorded) table has that name; else ``<schema>_<table>``. A name already taken, shared with another
new table, or longer than PostgreSQL's 63 bytes becomes ``<first 54 bytes>_<8 hex of sha256("schema.table")>``,
so two source tables never meet in one sink table, not even after truncation. Names are recorded per connector
(``engine/sink_names.py``): a table keeps its name when other tables appear later.

Pure functions, no imports from the service or the engine: the connector model validates explicit names with it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

SourceTable = tuple[str, str]  # (schema, table) on the source
MAX_BYTES = 63  # PostgreSQL truncates longer identifiers (NAMEDATALEN - 1)
_HASH_HEX = 8


def catalog_loc(table: SourceTable) -> tuple[str, ...]:
    """Where a table's ``sink_table`` sits in the catalog."""
    return ("schemas", table[0], "tables", table[1], "sink_table")


def catalog_field(table: SourceTable) -> str:
    """The same, as the dotted field of the connector that error messages name."""
    return ".".join(("source.postgres.catalog", *catalog_loc(table)))


class SinkNameClash(ValueError):
    """An explicit ``sink_table`` another source table has (or would get)."""

    def __init__(self, table: SourceTable, message: str) -> None:
        self.table = table
        super().__init__(message)


def truncate_bytes(name: str, limit: int) -> str:
    """At most ``limit`` bytes of UTF-8, never cutting a character in two."""
    return name.encode()[:limit].decode(errors="ignore")


def hashed(candidate: str, table: SourceTable) -> str:
    digest = hashlib.sha256(f"{table[0]}.{table[1]}".encode()).hexdigest()[:_HASH_HEX]
    return f"{truncate_bytes(candidate, MAX_BYTES - _HASH_HEX - 1)}_{digest}"


def _base_names(
    tables: Iterable[SourceTable], explicit: Mapping[SourceTable, str], recorded: Mapping[SourceTable, str]
) -> Counter[str]:
    """How many tables compete for each plain name (a table with an explicit name competes for none)."""
    return Counter(table for schema, table in {*tables, *recorded} if (schema, table) not in explicit)


def _preferred(table: SourceTable, base_names: Counter[str]) -> str:
    return table[1] if base_names[table[1]] == 1 else f"{table[0]}_{table[1]}"


def check_explicit(
    tables: Iterable[SourceTable], explicit: Mapping[SourceTable, str], recorded: Mapping[SourceTable, str]
) -> None:
    """Refuse an explicit name that is another table's (explicit or recorded) or the name another table would get."""
    tables = list(tables)
    owners = {name: table for table, name in recorded.items() if table not in explicit}
    for table in sorted(explicit):
        name, owner = explicit[table], owners.get(explicit[table])
        if owner is not None and owner != table:
            raise SinkNameClash(table, f"{name!r} is already the sink table of {owner[0]}.{owner[1]}")
        owners[name] = table
    base_names = _base_names(tables, explicit, recorded)
    for table in sorted(set(tables) - set(explicit) - set(recorded)):
        owner = owners.get(_preferred(table, base_names))
        if owner is not None:
            raise SinkNameClash(
                owner,
                f"{explicit[owner]!r} is the sink table name of {table[0]}.{table[1]}: choose another sink_table",
            )


def assign(
    tables: Sequence[SourceTable], explicit: Mapping[SourceTable, str], recorded: Mapping[SourceTable, str]
) -> dict[SourceTable, str]:
    """Sink table names of ``tables``: recorded ones kept (unless an explicit name replaces one), new ones by the
    rule in the module docstring. Raises :class:`SinkNameClash` for an explicit name that clashes."""
    check_explicit(tables, explicit, recorded)
    names = {
        table: explicit.get(table) or recorded[table] for table in tables if table in explicit or table in recorded
    }
    taken = set(names.values()) | {name for table, name in recorded.items() if table not in explicit}
    new = [table for table in tables if table not in names]
    base_names = _base_names(tables, explicit, recorded)
    # Own names first: `q3.q1_w` keeps `q1_w`, and `q1.w`, whose schema-prefixed name would be the same, is hashed.
    for tier in ([t for t in new if base_names[t[1]] == 1], [t for t in new if base_names[t[1]] > 1]):
        wanted = {table: _preferred(table, base_names) for table in tier}
        shared = Counter(wanted.values())
        for table in sorted(tier):
            name = wanted[table]
            if shared[name] > 1 or name in taken or len(name.encode()) > MAX_BYTES:
                name = hashed(name, table)
            if name in taken:  # only a table literally named like another's hashed name gets here
                raise SinkNameClash(table, f"cannot name its sink table: {name!r} is taken; set a sink_table")
            names[table] = name
            taken.add(name)
    return names
