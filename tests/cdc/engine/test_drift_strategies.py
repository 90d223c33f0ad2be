"""Drift under ``migration_strategy`` ``fail`` and ``keep``, and DDL while a run streams: each ends with the sink
equal to the source (the replicated columns) or a refused run whose message names the table and the remedy."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from airflow_connectors.cdc.engine import checkpoint, execute_run
from airflow_connectors.cdc.engine.interface import EngineError, RunCancelled, RunMode, RunRequest
from tests.cdc.engine.conftest import Pair, RecordingReporter, checksum
from tests.cdc.engine.test_drift_cases import source_columns

START = [
    "CREATE TABLE public.t (id int PRIMARY KEY, v int, w int)",
    "INSERT INTO public.t SELECT i, i, i FROM generate_series(1, 50) i",
]
DML = ["UPDATE public.t SET w = w + 1 WHERE id % 3 = 0", "DELETE FROM public.t WHERE id % 7 = 0"]


@pytest.fixture
def pair(versioned_pair: Pair) -> Pair:
    """Every test here on PostgreSQL 18 and 15."""
    return versioned_pair


def assert_equal(pair: Pair, source: str = "public.t", sink: str = "replica.t") -> None:
    columns = source_columns(pair.source, source)
    assert checksum(pair.sink, sink, columns) == checksum(pair.source, source, columns)


SET_IT = "is 'fail'; set it to"
REFUSED = {  # field set to 'fail': the DDL, and what the refusal must say
    "added_columns": (
        "ALTER TABLE public.t ADD COLUMN n int",
        rf"public\.t: column 'n' \(integer\) was added.*added_columns {SET_IT} 'apply'",
    ),
    "retyped_columns": (
        "ALTER TABLE public.t ALTER COLUMN v TYPE bigint",
        rf"public\.t: column 'v' changed type from integer to bigint.*retyped_columns {SET_IT} 'apply'",
    ),
    "dropped_columns": (
        "ALTER TABLE public.t DROP COLUMN v",
        rf"public\.t: column 'v' is no longer replicated.*dropped_columns {SET_IT} 'keep' or 'apply'",
    ),
    "dropped_tables": (
        "ALTER TABLE public.t RENAME TO t2",
        rf"public\.t is no longer replicated into replica\.t \(it is now public\.t2\).*dropped_tables {SET_IT} 'keep'",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("field", sorted(REFUSED))
def test_fail_strategy_refuses_naming_table_and_remedy_then_apply_ends_equal(pair: Pair, field: str) -> None:
    ddl, message = REFUSED[field]
    failing = pair.with_changes(sink__postgres__migration_strategy={field: "fail"})
    failing.on_source(*START)
    failing.run()
    table = "t2" if field == "dropped_tables" else "t"
    failing.on_source(*DML, ddl, *(statement.replace("public.t ", f"public.{table} ") for statement in DML))
    for _ in range(2):  # refused again and again, never half-applied
        with pytest.raises(EngineError, match=message):
            failing.run()
    remedy = "keep" if field.startswith("dropped") else "apply"
    fixed = pair.with_changes(sink__postgres__migration_strategy={field: remedy})
    fixed.run()
    assert_equal(fixed, f"public.{table}", f"replica.{table}")


@pytest.mark.slow
def test_keep_strategies_keep_the_dropped_column_and_flag_the_orphaned_table(pair: Pair) -> None:
    pair.on_source(*START, "CREATE TABLE public.gone (id int PRIMARY KEY)", "INSERT INTO public.gone VALUES (1)")
    pair.run()
    pair.on_source(*DML, "ALTER TABLE public.t DROP COLUMN v", "INSERT INTO public.t VALUES (100, 100)", *DML)
    pair.on_source("ALTER TABLE public.gone RENAME TO still_here")
    _, reporter = pair.run()  # defaults: dropped_columns and dropped_tables 'keep'
    assert_equal(pair)
    with psycopg.connect(pair.sink) as sink:
        kept = sink.execute("SELECT count(*), count(v), sum(v) FILTER (WHERE id < 50) FROM replica.t").fetchone()
        # old rows keep their value of the dropped column, the new row has none
        assert kept is not None and kept[1] == kept[0] - 1 and kept[2] == sum(i for i in range(1, 50) if i % 7 != 0)
        assert sink.execute("SELECT count(*) FROM replica.gone").fetchone() == (1,)
        states = checkpoint.table_states(sink, pair.connector.id)
    assert states["public.gone"].state == "orphaned"
    assert any("public.gone is no longer replicated" in line and "kept" in line for line in reporter.logs)
    assert_equal(pair, "public.still_here", "replica.still_here")


@pytest.mark.slow
def test_ddl_while_the_run_streams(pair: Pair) -> None:
    """DDL the WAL cannot carry, made while the stream runs: seen in its Relation message, the table is copied
    again in the same run; a plain added column goes through the stream."""
    pair.on_source(
        *START,
        "CREATE TABLE public.plain (id int PRIMARY KEY, w int)",
        "INSERT INTO public.plain SELECT i, i FROM generate_series(1, 20) i",
    )
    pair.run()
    calls, deadline, altered = [0], time.monotonic() + 60, [False]
    columns: dict[str, str] = {}
    sink = make_conninfo(pair.sink, options="-c lock_timeout=100")

    def alter_then_wait_for_equal() -> bool:
        calls[0] += 1
        if calls[0] == 3:
            pair.on_source(
                *DML,
                "ALTER TABLE public.t ADD COLUMN n int NOT NULL DEFAULT 5",
                "UPDATE public.t SET w = -w WHERE id < 10",
                "ALTER TABLE public.plain ADD COLUMN note text",
                "INSERT INTO public.plain VALUES (100, 100, 'new')",
            )
            altered[0] = True
            columns.update(t=source_columns(pair.source, "public.t"), plain=source_columns(pair.source, "public.plain"))
        if altered[0] and calls[0] % 10 == 0:
            try:
                equal = all(
                    checksum(pair.source, f"public.{name}", cols) == checksum(sink, f"replica.{name}", cols)
                    for name, cols in columns.items()
                )
            except (psycopg.errors.UndefinedColumn, psycopg.errors.LockNotAvailable):
                equal = False  # the stream (this very thread) holds the sink table in its open transaction
            if equal:
                return True
        return time.monotonic() > deadline

    reporter = RecordingReporter()
    with pytest.raises(RunCancelled):
        request = RunRequest(run_id=str(uuid.uuid4()), mode=RunMode.CONTINUOUS)
        execute_run(pair.connector, request, reporter, alter_then_wait_for_equal)
    reporter_logs = reporter.logs
    assert time.monotonic() <= deadline, reporter_logs
    assert any(line.startswith("public.t: column 'n' was added") for line in reporter_logs), reporter_logs
    assert not any(line.startswith("public.plain") and "copying" in line for line in reporter_logs), reporter_logs
    pair.run()
    assert_equal(pair)
    assert_equal(pair, "public.plain", "replica.plain")


def test_a_generated_column_the_sink_cannot_compute_is_refused_clearly(pair: Pair) -> None:
    with psycopg.connect(pair.source) as conn:
        if conn.info.server_version >= 180000:
            pytest.skip("PostgreSQL 18 sends generated columns' values: the sink computes nothing")
    pair.on_source(
        "CREATE FUNCTION public.twice(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 * 2'",
        "CREATE TABLE public.g (id int PRIMARY KEY, w int, g int GENERATED ALWAYS AS (public.twice(w)) STORED)",
    )
    refused = r"public\.g: the sink cannot compute generated column\(s\) 'g'.*exclude_columns"
    with pytest.raises(EngineError, match=refused):
        pair.run()


@pytest.mark.slow
def test_a_sink_table_dropped_by_someone_is_copied_again(pair: Pair) -> None:
    pair.on_source(*START)
    pair.run()
    with psycopg.connect(pair.sink, autocommit=True) as sink:
        sink.execute("DROP TABLE replica.t")
    pair.on_source(*DML)
    pair.run()
    assert_equal(pair)
