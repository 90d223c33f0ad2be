"""The libpq-level COPY pipe on a real server: it copies exactly, and an abort or a failure on either side leaves
both connections usable and the sink without a partial copy."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql

from airflow_connectors.cdc.engine import copy_pipe
from airflow_connectors.cdc.engine.copy_pipe import pipe
from airflow_connectors.cdc.engine.interface import RunCancelled

OUT = sql.SQL("COPY (SELECT id, v FROM src) TO STDOUT (FORMAT BINARY)")
IN = sql.SQL("COPY dst (id, v) FROM STDIN (FORMAT BINARY)")


@pytest.fixture
def dsn(pg_dsn: str) -> str:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE src (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO src SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 50000) i")
        conn.execute("CREATE TABLE dst (id int PRIMARY KEY, v text)")
    return pg_dsn


def same(dsn: str) -> bool:
    query = "SELECT count(*), md5(string_agg(id || v, ',' ORDER BY id)) FROM {}"
    with psycopg.connect(dsn) as conn:
        return bool(conn.execute(query.format("src")).fetchone() == conn.execute(query.format("dst")).fetchone())


def test_copies_every_row_and_counts_them(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_pipe, "CHECK_BYTES", 100_000)
    seen: list[int] = []
    with psycopg.connect(dsn) as src, psycopg.connect(dsn, autocommit=True) as dst:
        rows, copied = pipe(src, OUT, dst, IN, seen.append)
        assert src.execute("SELECT 1").fetchone() == (1,)  # both connections idle and usable again
        assert dst.execute("SELECT 1").fetchone() == (1,)
    assert rows == 50000 and same(dsn)
    assert copied > 50000 * 96 and len(seen) > 10 and seen[-1] <= copied  # about every 100 kB
    assert all(later - earlier >= 100_000 for earlier, later in zip(seen, seen[1:], strict=False))


def test_an_exception_from_check_aborts_both_sides(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copy_pipe, "CHECK_BYTES", 100_000)

    def stop(copied: int) -> None:
        if copied > 300_000:
            raise RunCancelled()

    with psycopg.connect(dsn) as src, psycopg.connect(dsn, autocommit=True) as dst:
        with pytest.raises(RunCancelled):
            pipe(src, OUT, dst, IN, stop)
        src.rollback()
        assert src.execute("SELECT count(*) FROM src").fetchone() == (50000,)
        assert dst.execute("SELECT count(*) FROM dst").fetchone() == (0,)  # the sink's COPY rolled back


def test_a_sink_failure_raises_its_own_error_class(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO dst VALUES (25000, 'already here')")
    with psycopg.connect(dsn) as src, psycopg.connect(dsn, autocommit=True) as dst:
        with pytest.raises(errors.UniqueViolation):
            pipe(src, OUT, dst, IN, lambda copied: None)
        src.rollback()
        assert dst.execute("SELECT count(*) FROM dst").fetchone() == (1,)


def test_a_source_failure_raises_and_leaves_the_sink_untouched(dsn: str) -> None:
    bad = sql.SQL("COPY (SELECT id, (v::int)::text FROM src) TO STDOUT (FORMAT BINARY)")  # fails on the first row
    with psycopg.connect(dsn) as src, psycopg.connect(dsn, autocommit=True) as dst:
        with pytest.raises(errors.InvalidTextRepresentation):
            pipe(src, bad, dst, IN, lambda copied: None)
        src.rollback()
        assert dst.execute("SELECT count(*) FROM dst").fetchone() == (0,)
