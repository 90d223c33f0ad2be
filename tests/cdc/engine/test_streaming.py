"""Large transactions streamed while in progress (pgoutput protocol 2): the source's logical_decoding_work_mem is
set to its minimum (64kB) so that every transaction here is streamed in many blocks, interleaved with others."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from airflow_connectors.cdc.engine import replication, streamed_txn
from airflow_connectors.cdc.engine.interface import RunCancelled, RunMode
from airflow_connectors.cdc.engine.naming import slot_name
from airflow_connectors.cdc.engine.slot import exec_simple, replication_connection
from tests.cdc.engine.conftest import Pair, RecordingReporter, checksum

ROWS = 20_000  # about 1 MB of changes: a dozen blocks at 64kB


@pytest.fixture
def pair(versioned_pair: Pair) -> Pair:
    """Every test here on PostgreSQL 18 and 15 (protocol 2 streaming exists since 14)."""
    return versioned_pair


@pytest.fixture
def streaming(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> Pair:
    monkeypatch.setattr(streamed_txn, "READ_BYTES", 4096)  # spools read back in small blocks: messages span them
    monkeypatch.setattr(streamed_txn, "WRITE_BYTES", 20_000)  # and written in many parts
    database = str(conninfo_to_dict(pair.source)["dbname"])
    pair.on_source(
        sql.SQL("ALTER DATABASE {} SET logical_decoding_work_mem = '64kB'").format(sql.Identifier(database)).as_string()
    )
    pair.on_source("CREATE TABLE public.big (id int PRIMARY KEY, v text, n int)")
    pair.run()
    return pair


def streamed(reporter: RecordingReporter) -> list[str]:
    return [line for line in reporter.logs if "streamed while in progress" in line]


def same(pair: Pair, table: str = "big") -> bool:
    return checksum(pair.source, f"public.{table}") == checksum(pair.sink, f"replica.{table}")


def test_a_big_transaction_is_streamed_and_applied_once(streaming: Pair) -> None:
    streaming.on_source(
        f"BEGIN; INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i;"
        " UPDATE public.big SET n = 1 WHERE id % 3 = 0; DELETE FROM public.big WHERE id % 10 = 0; COMMIT"
    )
    result, reporter = streaming.run()
    assert streamed(reporter) and "applied as they came" in streamed(reporter)[0], reporter.logs
    counters = result.tables["public.big"]
    assert (counters.inserts, counters.updates, counters.deletes) == (ROWS, ROWS // 3, ROWS // 10)
    assert same(streaming) and checksum(streaming.sink, "replica.big")[0] == ROWS - ROWS // 10
    again, _ = streaming.run()
    assert sum(c.rows for c in again.tables.values()) == 0 and same(streaming)


def test_an_aborted_big_transaction_leaves_nothing(streaming: Pair) -> None:
    streaming.on_source(
        f"BEGIN; INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i; ROLLBACK",
        "INSERT INTO public.big VALUES (1, 'kept', 1)",
    )
    result, reporter = streaming.run()
    assert result.tables["public.big"].rows == 1
    assert checksum(streaming.sink, "replica.big")[0] == 1 and same(streaming)


def test_a_rolled_back_savepoint_inside_a_big_transaction(streaming: Pair) -> None:
    streaming.on_source(
        f"BEGIN; INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i;"
        f" SAVEPOINT a; INSERT INTO public.big SELECT i, 'gone', 0 FROM generate_series({ROWS} + 1, {2 * ROWS}) i;"
        " UPDATE public.big SET n = 99 WHERE id <= 100;"
        "   SAVEPOINT nested; DELETE FROM public.big WHERE id <= 50; RELEASE nested;"
        " ROLLBACK TO SAVEPOINT a;"
        f" SAVEPOINT b; UPDATE public.big SET n = 2 WHERE id % 2 = 0; RELEASE b;"
        f" INSERT INTO public.big SELECT i, 'after', 3 FROM generate_series({2 * ROWS} + 1, {2 * ROWS + 100}) i;"
        " COMMIT"
    )
    result, reporter = streaming.run()
    assert streamed(reporter)
    assert any("once it commits, from its spool" in line for line in reporter.logs), reporter.logs
    assert checksum(streaming.sink, "replica.big")[0] == ROWS + 100 and same(streaming)
    with psycopg.connect(streaming.sink) as sink:
        assert sink.execute("SELECT count(*) FROM replica.big WHERE n = 99 OR v = 'gone'").fetchone() == (0,)


def test_two_interleaved_big_transactions(streaming: Pair) -> None:
    with psycopg.connect(streaming.source) as one, psycopg.connect(streaming.source) as two:
        for part in range(4):  # each transaction is streamed in turns with the other
            low, high = part * ROWS // 4 + 1, (part + 1) * ROWS // 4
            one.execute(f"INSERT INTO public.big SELECT i, 'one', {part} FROM generate_series({low}, {high}) i")
            two.execute(f"INSERT INTO public.big SELECT -i, 'two', {part} FROM generate_series({low}, {high}) i")
        two.execute("UPDATE public.big SET v = 'two, updated' WHERE id < 0 AND id % 5 = 0")
        two.commit()  # the second one commits first
        streaming.on_source("INSERT INTO public.big VALUES (0, 'small, in between', 0)")
        one.execute("DELETE FROM public.big WHERE id > 0 AND id % 7 = 0")
        one.commit()
    result, reporter = streaming.run()
    assert len(streamed(reporter)) == 2
    assert same(streaming) and checksum(streaming.sink, "replica.big")[0] == 2 * ROWS + 1 - ROWS // 7


def test_a_catch_up_run_ending_inside_a_big_transaction_applies_none_of_it(streaming: Pair) -> None:
    """The run's fence comes while a streamed transaction is still open: what was applied of it as it came is rolled
    back, and the next run applies it whole once it commits."""
    with psycopg.connect(streaming.source) as big:
        big.execute(f"INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i")
        result, reporter = streaming.run()  # its fence is written after the blocks streamed so far
        assert any("once it commits, from its spool" in line for line in reporter.logs), reporter.logs
        assert result.tables["public.big"].rows == 0
        assert checksum(streaming.sink, "replica.big")[0] == 0
        big.execute("UPDATE public.big SET n = 1 WHERE id % 3 = 0")
        big.commit()
    result, reporter = streaming.run()
    assert streamed(reporter)
    assert result.tables["public.big"].inserts == ROWS
    assert same(streaming) and checksum(streaming.sink, "replica.big")[0] == ROWS


def test_a_continuous_run_stopped_inside_a_big_transaction_applies_none_of_it(streaming: Pair) -> None:
    """Stopped while a streamed transaction is being applied as it arrives (the engine's sink session holds an open
    transaction that wrote): the stop rolls it back; once committed, the next run applies it whole."""
    sink_database = str(conninfo_to_dict(streaming.sink)["dbname"])

    def applying_as_it_arrives() -> bool:
        with psycopg.connect(streaming.sink, autocommit=True) as sink:
            row = sink.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_xid IS NOT NULL"
                " AND pid <> pg_backend_pid()",
                (sink_database,),
            ).fetchone()
        return bool(row and row[0])

    with psycopg.connect(streaming.source) as big:
        big.execute(f"INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i")
        with pytest.raises(RunCancelled):
            streaming.run(RunMode.CONTINUOUS, should_stop=applying_as_it_arrives)
        assert checksum(streaming.sink, "replica.big")[0] == 0
        big.commit()
    result, _ = streaming.run()
    assert result.tables["public.big"].inserts == ROWS and same(streaming)


def test_a_column_added_inside_a_big_transaction(streaming: Pair) -> None:
    """The table's shape changes in the middle of a streamed transaction: the sink's is changed (drift commits), so
    the transaction is not applied as it comes but from its spool, once committed, rows before and after alike."""
    streaming.on_source(
        f"BEGIN; INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i;"
        " ALTER TABLE public.big ADD COLUMN extra int;"
        f" INSERT INTO public.big SELECT i, 'after', 1, i FROM generate_series({ROWS} + 1, {ROWS + 500}) i;"
        " UPDATE public.big SET extra = -id WHERE id <= 100; COMMIT"
    )
    result, reporter = streaming.run()
    assert any("once it commits, from its spool" in line for line in reporter.logs), reporter.logs
    assert result.tables["public.big"].inserts == ROWS + 500
    assert same(streaming)
    with psycopg.connect(streaming.sink) as sink:
        assert sink.execute("SELECT sum(extra) FROM replica.big").fetchone() == (
            sum(range(ROWS + 1, ROWS + 501)) - sum(range(1, 101)),
        )


CONTINUOUS = """
import sys, uuid
from airflow_connectors.cdc.engine import execute_run
from airflow_connectors.cdc.engine.interface import RunMode, RunRequest
from airflow_connectors.cdc.connectors.models import Connector
from tests.cdc.engine.conftest import RecordingReporter
connector = Connector.model_validate_json(sys.stdin.readline())
print("started", flush=True)
request = RunRequest(run_id=str(uuid.uuid4()), mode=RunMode.CONTINUOUS)
execute_run(connector, request, RecordingReporter(), lambda: False)
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_killed_mid_stream_resumes_exactly(streaming: Pair) -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", CONTINUOUS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert engine.stdin is not None and engine.stdout is not None
        engine.stdin.write(json.dumps(streaming.connector.stored()) + "\n")
        engine.stdin.flush()
        assert engine.stdout.readline().strip() == "started"
        with psycopg.connect(streaming.source) as big:
            big.execute(f"INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i")
            # A small transaction committed after the big one's first blocks: once it is in the sink, the engine
            # has staged those blocks and committed a checkpoint past the big transaction's start.
            streaming.on_source("INSERT INTO public.big VALUES (-1, 'marker', 0)")

            def marker_applied() -> bool:
                with psycopg.connect(streaming.sink) as sink:
                    return sink.execute("SELECT count(*) FROM replica.big WHERE id = -1").fetchone() == (1,)

            wait_for(marker_applied, "the small transaction in the sink")
            engine.kill()
            engine.wait(timeout=30)
            big.execute("UPDATE public.big SET n = 1 WHERE id % 4 = 0")
            big.execute("SAVEPOINT s")
            big.execute(f"DELETE FROM public.big WHERE id > {ROWS // 2}")
            big.execute("ROLLBACK TO SAVEPOINT s")
            big.commit()
        result, reporter = streaming.run()  # the source sends the big transaction again from its first block
        assert streamed(reporter)
        assert result.tables["public.big"].inserts == ROWS
        assert same(streaming) and checksum(streaming.sink, "replica.big")[0] == ROWS + 1
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait(timeout=30)


def test_protocol_1_still_carries_big_transactions(streaming: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sources older than 14 get protocol 1: the walsender sends a big transaction whole, after its commit."""
    monkeypatch.setattr(replication, "STREAMING_SINCE", 10**7)
    streaming.on_source(
        f"BEGIN; INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i;"
        " SAVEPOINT a; DELETE FROM public.big WHERE id < 100; ROLLBACK TO SAVEPOINT a; COMMIT"
    )
    result, reporter = streaming.run()
    assert not streamed(reporter)
    assert result.tables["public.big"].rows == ROWS and same(streaming)


@pytest.mark.slow  # every statement on the replica takes 0.3 s
def test_a_slow_sink_does_not_let_the_walsender_time_out(streaming: Pair) -> None:
    """Replaying a big transaction into a slow sink keeps the stream alive: status updates still go to the source
    while nothing is read (the walsender ends a connection that is silent for wal_sender_timeout)."""
    database = str(conninfo_to_dict(streaming.source)["dbname"])
    streaming.on_source(
        sql.SQL("ALTER DATABASE {} SET wal_sender_timeout = '2s'").format(sql.Identifier(database)).as_string()
    )
    with psycopg.connect(streaming.sink, autocommit=True) as sink:  # every statement on the replica takes 0.3 s
        sink.execute(
            "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3);"
            " RETURN NULL; END $$"
        )
        sink.execute(
            "CREATE TRIGGER slow AFTER INSERT OR UPDATE OR DELETE ON replica.big FOR EACH STATEMENT"
            " EXECUTE FUNCTION public.slow()"
        )
    streaming.on_source(f"INSERT INTO public.big SELECT i, md5(i::text), 0 FROM generate_series(1, {ROWS}) i")

    walsenders: set[int | None] = set()  # the source process serving our slot, each time we look

    def all_applied() -> bool:
        with psycopg.connect(streaming.source) as source:
            row = source.execute(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot_name(streaming.connector.id),)
            ).fetchone()
            walsenders.add(row[0] if row else None)
        with psycopg.connect(streaming.sink) as sink:
            return sink.execute("SELECT count(*) FROM replica.big").fetchone() == (ROWS,)

    with pytest.raises(RunCancelled):
        streaming.run(RunMode.CONTINUOUS, should_stop=all_applied)
    assert same(streaming)
    assert len(walsenders) == 1 and None not in walsenders  # one walsender all along, never timed out


def test_the_walsender_streams_in_blocks_of_at_most_4mb(pair: Pair) -> None:
    """Lowered for our walsender alone (the server's 64MB default would send a big transaction in a few bursts, the
    last after its COMMIT), and never raised above a lower setting of the server's."""
    with replication_connection(pair.source) as conn:
        replication.stream_sooner(conn)
        assert exec_simple(conn, "SHOW logical_decoding_work_mem") == [("4MB",)]
    database = str(conninfo_to_dict(pair.source)["dbname"])
    pair.on_source(
        sql.SQL("ALTER DATABASE {} SET logical_decoding_work_mem = '1MB'").format(sql.Identifier(database)).as_string()
    )
    with replication_connection(pair.source) as conn:
        replication.stream_sooner(conn)
        assert exec_simple(conn, "SHOW logical_decoding_work_mem") == [("1MB",)]
