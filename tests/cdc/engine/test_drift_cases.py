"""Everyday DDL on a replicated source, every case of issue 13 (and a few more): snapshot, DDL with DML before and
after it, a catch-up run, the sink compared with the source row by row; then more DML and another run (nothing may
flip back). All cases share one connector (``migration_strategy`` all ``apply``, ``partitions_as_root``) and one
pair of runs, so the suite stays fast; each case is its own test item. The ``fail`` / ``keep`` strategies and DDL
during a run are in ``test_drift_strategies.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest

from airflow_connectors.cdc.engine import drop_source_objects
from tests.cdc.engine.conftest import Pair, RecordingReporter, checksum, make_pair
from tests.conftest import PgServer

APPLY_ALL = {
    "added_columns": "apply",
    "dropped_columns": "apply",
    "retyped_columns": "apply",
    "dropped_tables": "apply",
}


def table(name: str, columns: str = "id int PRIMARY KEY, v int, w int", values: str = "i, i, i") -> list[str]:
    return [
        f"CREATE TABLE public.{name} ({columns})",
        f"INSERT INTO public.{name} SELECT {values} FROM generate_series(1, 50) i",
    ]


def dml(name: str, step: int) -> list[str]:
    """Inserts, updates and deletes that touch only ``id`` and ``w`` (the DDL plays with the other columns)."""
    return [
        f"UPDATE public.{name} SET w = w + {step} WHERE id % {step + 3} = 0",
        f"DELETE FROM public.{name} WHERE id % {step + 10} = 1",
        f"INSERT INTO public.{name} (id, w) VALUES ({1000 * step}, {step})",
    ]


@dataclass
class Case:
    setup: list[str]
    ddl: list[str]
    after: list[str] | None = None  # DML after the DDL; None: the generic one, []: none at all
    source: str = ""  # source table to compare, default public.<case>
    sink: str = ""  # sink table to compare, default replica.<table of source>
    gone: list[str] = field(default_factory=list)  # sink tables that must not exist any more


def simple(name: str, *ddl: str, after: list[str] | None = None) -> Case:
    return Case(table(name), [sql_.format(t=f"public.{name}") for sql_ in ddl], after)


GENERATED = "g int GENERATED ALWAYS AS (w * 2 + v) STORED"
CASES: dict[str, Case] = {
    "add_not_null_default": simple("add_not_null_default", "ALTER TABLE {t} ADD COLUMN n int NOT NULL DEFAULT 0"),
    "add_nullable_default": simple("add_nullable_default", "ALTER TABLE {t} ADD COLUMN n int DEFAULT 7"),
    "add_default_keyless": Case(
        [
            *table("add_default_keyless", "id int, v int, w int"),
            "ALTER TABLE public.add_default_keyless REPLICA IDENTITY FULL",
        ],
        ["ALTER TABLE public.add_default_keyless ADD COLUMN n int NOT NULL DEFAULT 0"],
        [*dml("add_default_keyless", 2), "UPDATE public.add_default_keyless SET w = -w WHERE n = 0 AND id < 20"],
    ),  # fmt: skip
    "add_uuid_default": simple("add_uuid_default", "ALTER TABLE {t} ADD COLUMN n uuid DEFAULT gen_random_uuid()"),
    "add_now_default": simple("add_now_default", "ALTER TABLE {t} ADD COLUMN n timestamptz DEFAULT now()"),
    "add_random_default": simple("add_random_default", "ALTER TABLE {t} ADD COLUMN n float8 DEFAULT random()"),
    "add_generated": simple("add_generated", "ALTER TABLE {t} ADD COLUMN n int GENERATED ALWAYS AS (w * 2) STORED"),
    "generated_from_the_start": Case(
        table(
            "generated_from_the_start", "id int PRIMARY KEY, v int, w int, g int GENERATED ALWAYS AS (w * 2 + v) STORED"
        ),
        [],
    ),  # fmt: skip
    "add_plain_column": simple(
        "add_plain_column",
        "ALTER TABLE {t} ADD COLUMN n text",
        after=["UPDATE public.add_plain_column SET n = 'n' || id WHERE id % 2 = 0", *dml("add_plain_column", 2)],
    ),
    "rename_column": simple("rename_column", "ALTER TABLE {t} RENAME COLUMN v TO v2"),
    "add_column_no_dml_after": simple("add_column_no_dml_after", "ALTER TABLE {t} ADD COLUMN n int", after=[]),
    "drop_column_no_dml_after": simple("drop_column_no_dml_after", "ALTER TABLE {t} DROP COLUMN v", after=[]),
    "drop_add_other_type": simple(
        "drop_add_other_type",
        "ALTER TABLE {t} DROP COLUMN v",
        "ALTER TABLE {t} ADD COLUMN v text",
        after=[*dml("drop_add_other_type", 2), "UPDATE public.drop_add_other_type SET v = 'x' WHERE id % 4 = 0"],
    ),
    "drop_add_same_type": simple(
        "drop_add_same_type", "ALTER TABLE {t} DROP COLUMN v", "ALTER TABLE {t} ADD COLUMN v int"
    ),
    "rename_table": Case(
        table("rename_table"),
        ["ALTER TABLE public.rename_table RENAME TO renamed_table"],
        dml("renamed_table", 2),
        source="public.renamed_table",
        gone=["replica.rename_table"],
    ),
    "drop_primary_key": simple(
        "drop_primary_key",
        "ALTER TABLE {t} DROP CONSTRAINT drop_primary_key_pkey",
        "ALTER TABLE {t} REPLICA IDENTITY FULL",
        after=[*dml("drop_primary_key", 2), "DELETE FROM public.drop_primary_key WHERE id BETWEEN 20 AND 30"],
    ),
    "pk_dropped_then_duplicates": simple(
        "pk_dropped_then_duplicates",
        "ALTER TABLE {t} DROP CONSTRAINT pk_dropped_then_duplicates_pkey",
        "ALTER TABLE {t} REPLICA IDENTITY FULL",
        after=[
            "INSERT INTO pk_dropped_then_duplicates SELECT * FROM pk_dropped_then_duplicates WHERE id <= 10",
            "UPDATE public.pk_dropped_then_duplicates SET w = -1 WHERE id = 3",
            "DELETE FROM public.pk_dropped_then_duplicates WHERE id = 4",
        ],
    ),
    "identity_on_another_index": Case(
        [*table("identity_on_another_index"), "DELETE FROM public.identity_on_another_index WHERE id % 2 = 0"],
        [
            "CREATE UNIQUE INDEX identity_on_another_index_w ON public.identity_on_another_index (w)",
            "ALTER TABLE public.identity_on_another_index ALTER COLUMN w SET NOT NULL",
            "ALTER TABLE public.identity_on_another_index REPLICA IDENTITY USING INDEX identity_on_another_index_w",
        ],
        [
            "DELETE FROM public.identity_on_another_index WHERE id % 3 = 0",
            "UPDATE public.identity_on_another_index SET w = w + 1000, v = 0 WHERE id % 5 = 0",
        ],
    ),  # fmt: skip
    "enum_rename_value": Case(
        [
            "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')",
            *table(
                "enum_rename_value",
                "id int PRIMARY KEY, m public.mood, w int",
                "i, (ARRAY['sad', 'ok', 'happy'])[i % 3 + 1]::public.mood, i",
            ),
        ],  # fmt: skip
        ["ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine'"],
    ),
    "enum_add_value": Case(
        [
            "CREATE TYPE public.size AS ENUM ('s', 'm')",
            *table("enum_add_value", "id int PRIMARY KEY, m public.size, w int", "i, 's', i"),
        ],
        ["ALTER TYPE public.size ADD VALUE 'xl' BEFORE 's'"],
        [*dml("enum_add_value", 2), "UPDATE public.enum_add_value SET m = 'xl' WHERE id % 4 = 0"],
    ),
    "composite_add_attribute": Case(
        [
            "CREATE TYPE public.pair AS (a int, b text)",
            *table("composite_add_attribute", "id int PRIMARY KEY, c public.pair, w int", "i, ROW(i, 'b')::pair, i"),
        ],
        ["ALTER TYPE public.pair ADD ATTRIBUTE z int"],
    ),  # fmt: skip
    "add_identity_column": simple(
        "add_identity_column",
        "ALTER TABLE {t} ADD COLUMN n int GENERATED ALWAYS AS IDENTITY",
    ),
    "attach_filled_partition": Case(
        [
            "CREATE TABLE public.attach_filled_partition (id int, w int, PRIMARY KEY (id, w)) PARTITION BY RANGE (w)",
            "CREATE TABLE public.attach_p1 PARTITION OF public.attach_filled_partition FOR VALUES FROM (0) TO (100)",
            "INSERT INTO public.attach_filled_partition SELECT i, i FROM generate_series(1, 50) i",
        ],
        [
            "CREATE TABLE public.attach_p2 (id int NOT NULL, w int NOT NULL)",
            "INSERT INTO public.attach_p2 SELECT i, 100 + i FROM generate_series(1, 40) i",
            "ALTER TABLE attach_filled_partition ATTACH PARTITION attach_p2 FOR VALUES FROM (100) TO (200)",
        ],
        [
            "INSERT INTO public.attach_filled_partition VALUES (77, 177), (78, 78)",
            "DELETE FROM public.attach_filled_partition WHERE id % 9 = 0",
        ],
    ),  # fmt: skip
    "detach_partition": Case(
        [
            "CREATE TABLE public.detach_partition (id int, w int, PRIMARY KEY (id, w)) PARTITION BY RANGE (w)",
            "CREATE TABLE public.detach_p1 PARTITION OF public.detach_partition FOR VALUES FROM (0) TO (100)",
            "CREATE TABLE public.detach_p2 PARTITION OF public.detach_partition FOR VALUES FROM (100) TO (200)",
            "INSERT INTO public.detach_partition SELECT i, i % 200 FROM generate_series(1, 300) i",
        ],
        ["ALTER TABLE public.detach_partition DETACH PARTITION public.detach_p2"],
        [
            "INSERT INTO public.detach_partition VALUES (1000, 5)",
            "DELETE FROM public.detach_partition WHERE id % 7 = 0",
            "UPDATE public.detach_p2 SET id = -id WHERE id % 2 = 0",
        ],
    ),  # fmt: skip
    "alter_type_using": Case(
        table("alter_type_using", "id int PRIMARY KEY, v numeric, w int", "i, i + 0.5, i"),
        ["ALTER TABLE public.alter_type_using ALTER COLUMN v TYPE int USING (v * 10)::int"],
        [*dml("alter_type_using", 2), "UPDATE public.alter_type_using SET v = v + 1 WHERE id % 6 = 0"],
    ),
    "widen_varchar": Case(
        table("widen_varchar", "id int PRIMARY KEY, v varchar(5), w int", "i, 'v' || i, i"),
        ["ALTER TABLE public.widen_varchar ALTER COLUMN v TYPE varchar(50)"],
        [*dml("widen_varchar", 2), "UPDATE public.widen_varchar SET v = repeat('long', 10) WHERE id % 6 = 0"],
    ),
    "drop_not_null": Case(
        table("drop_not_null", "id int PRIMARY KEY, v int NOT NULL DEFAULT 0, w int"),
        ["ALTER TABLE public.drop_not_null ALTER COLUMN v DROP NOT NULL"],
        [*dml("drop_not_null", 2), "UPDATE public.drop_not_null SET v = NULL WHERE id % 6 = 0"],
    ),
    "recreated_table": Case(
        table("recreated_table"),
        [
            "DROP TABLE public.recreated_table",
            "CREATE TABLE public.recreated_table (id int PRIMARY KEY, v int, w int)",
            "INSERT INTO public.recreated_table SELECT i, -i, -i FROM generate_series(20, 80) i",
        ],
    ),
    "truncate_and_reload": simple(
        "truncate_and_reload",
        "TRUNCATE public.truncate_and_reload",
        after=["INSERT INTO public.truncate_and_reload SELECT i, 0, i FROM generate_series(1, 30) i"],
    ),  # fmt: skip
}
# Tables the cases create as a side effect, compared too.
EXTRA = {"detached_partition_itself": ("public.detach_p2", "replica.detach_p2")}


def next_run_dml(source: str) -> str:
    if source.endswith("_partition"):  # w is the partition key: move ids instead
        return f"UPDATE {source} SET id = id + 100000 WHERE id % 4 = 0"
    return f"UPDATE {source} SET w = w + 700000 WHERE id % 4 = 0"  # w stays unique where it must


def source_columns(conninfo: str, name: str) -> str:
    schema, table_name = name.split(".")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND attnum > 0"
            " AND NOT attisdropped",
            (schema, table_name),
        ).fetchone()
    assert row is not None
    return str(row[0])


def exists(conninfo: str, name: str) -> bool:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone() == (True,)


@dataclass
class Observed:
    """Source and sink checksums of each case after the catch-up run and after the next one."""

    after_catch_up: dict[str, tuple[tuple[int, str], tuple[int, str] | None]] = field(default_factory=dict)
    after_next_run: dict[str, tuple[tuple[int, str], tuple[int, str] | None]] = field(default_factory=dict)
    stale_left: dict[str, list[str]] = field(default_factory=dict)
    reporters: list[RecordingReporter] = field(default_factory=list)


def pairs() -> dict[str, tuple[str, str]]:
    compared = {}
    for name, case in CASES.items():
        source = case.source or f"public.{name}"
        compared[name] = (source, case.sink or f"replica.{source.split('.')[1]}")
    return compared | EXTRA


def observe(pair: Pair) -> dict[str, tuple[tuple[int, str], tuple[int, str] | None]]:
    seen: dict[str, tuple[tuple[int, str], tuple[int, str] | None]] = {}
    for name, (source, sink) in pairs().items():
        columns = source_columns(pair.source, source)
        sink_sum = checksum(pair.sink, sink, columns) if exists(pair.sink, sink) else None
        seen[name] = (checksum(pair.source, source, columns), sink_sum)
    return seen


@pytest.fixture(scope="module")
def observed(versioned_pg_server: PgServer) -> Iterator[Observed]:
    pg_server = versioned_pg_server
    suffix = uuid.uuid4().hex[:6]
    names = [f"t_drift_cases_src_{suffix}", f"t_drift_cases_snk_{suffix}"]
    pair = make_pair(pg_server, *(pg_server.create_database(name) for name in names))
    pair = pair.with_changes(source__postgres__partitions_as_root=True, sink__postgres__migration_strategy=APPLY_ALL)
    result = Observed()
    try:
        pair.on_source(*(statement for case in CASES.values() for statement in case.setup))
        pair.run()
        for name, case in CASES.items():
            table_name = (case.source or f"public.{name}").split(".")[1]
            after = dml(table_name, 2) if case.after is None else case.after
            pair.on_source(*dml(name, 1), *case.ddl, *after)
        result.reporters.append(pair.run()[1])
        result.after_catch_up = observe(pair)
        pair.on_source(*(next_run_dml(source) for source, _ in pairs().values()))
        result.reporters.append(pair.run()[1])
        result.after_next_run = observe(pair)
        result.stale_left = {name: [t for t in case.gone if exists(pair.sink, t)] for name, case in CASES.items()}
        yield result
    finally:
        drop_source_objects(pair.connector)
        for name in names:
            pg_server.drop_database(name)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(pairs()))
def test_sink_equals_source_after_the_catch_up_run(observed: Observed, case: str) -> None:
    source, sink = observed.after_catch_up[case]
    assert sink == source, f"{case}: sink differs from the source ({sink} != {source})"
    assert source[0] > 0


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(pairs()))
def test_sink_stays_equal_after_the_next_run(observed: Observed, case: str) -> None:
    source, sink = observed.after_next_run[case]
    assert sink == source, f"{case}: sink differs from the source after the next run ({sink} != {source})"


@pytest.mark.slow
def test_stale_sink_tables_are_dropped_with_dropped_tables_apply(observed: Observed) -> None:
    assert {name: left for name, left in observed.stale_left.items() if left} == {}
    assert any("rename_table is no longer replicated" in line for line in observed.reporters[0].logs)


@pytest.mark.slow
def test_what_the_wal_cannot_carry_is_copied_again_and_the_rest_is_not(observed: Observed) -> None:
    copied = {line.split(":")[0] for line in observed.reporters[0].logs if "copying the table again" in line}
    for name in (
        *("add_not_null_default", "add_uuid_default", "add_identity_column", "rename_column", "alter_type_using"),
        *("enum_rename_value", "composite_add_attribute", "drop_add_same_type", "attach_filled_partition"),
    ):
        assert f"public.{name}" in copied, observed.reporters[0].logs
    carried = ("add_plain_column", "drop_primary_key", "identity_on_another_index", "widen_varchar", "enum_add_value")
    for name in carried:
        assert f"public.{name}" not in copied, observed.reporters[0].logs
    assert not any("copying the table again" in line for line in observed.reporters[1].logs), observed.reporters[1].logs
