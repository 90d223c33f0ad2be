"""execute_run end to end on real servers: snapshot, then catch-up runs that bring every change across."""

from __future__ import annotations

import psycopg
import pytest

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.engine.interface import EngineError, EnginePhase, RunMode, SlotLostError
from tests.cdc.engine.conftest import Pair, checksum


def test_snapshot_then_changes_arrive_exactly(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text)",
        "CREATE INDEX items_name ON public.items (name)",
        "INSERT INTO public.items SELECT i, 'item ' || i, i * 1.5, NULL FROM generate_series(1, 5000) i",
    )
    result, reporter = pair.run()
    assert reporter.phases == [EnginePhase.SNAPSHOTTING, EnginePhase.STREAMING]
    assert result.tables["public.items"].rows == 5000 and result.fence_lsn and result.applied_lsn
    assert checksum(pair.source, "public.items") == checksum(pair.sink, "replica.items")
    pair.on_source(
        "INSERT INTO public.items SELECT i, 'new ' || i, 1, 'x' FROM generate_series(5001, 5100) i",
        "UPDATE public.items SET price = price + 1 WHERE id % 7 = 0",
        "DELETE FROM public.items WHERE id % 11 = 0",
        "UPDATE public.items SET id = id + 100000 WHERE id = 3",  # a key change
    )
    result, reporter = pair.run()
    assert reporter.phases == [EnginePhase.STREAMING]
    counters = result.tables["public.items"]
    assert (counters.inserts, counters.updates, counters.deletes) == (100, 5100 // 7 + 1, 5100 // 11)
    assert counters.bytes > 0 and counters.rows == counters.inserts + counters.updates + counters.deletes
    assert checksum(pair.source, "public.items") == checksum(pair.sink, "replica.items")
    again, _ = pair.run()  # idle source: the fence ends the run, nothing applied twice
    assert sum(c.rows for c in again.tables.values()) == 0
    assert checksum(pair.source, "public.items") == checksum(pair.sink, "replica.items")


def test_table_without_key_needs_replica_identity_full(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.loose (a int, b text)", "INSERT INTO public.loose VALUES (1, 'x'), (1, 'x')")
    with pytest.raises(EngineError, match="REPLICA IDENTITY FULL"):
        pair.run()
    pair.on_source("ALTER TABLE public.loose REPLICA IDENTITY FULL")
    pair.run()
    pair.on_source(
        "DELETE FROM public.loose WHERE ctid = (SELECT min(ctid) FROM public.loose)",
        "UPDATE public.loose SET b = 'y'",
        "INSERT INTO public.loose VALUES (2, NULL)",
    )
    pair.run()
    assert checksum(pair.source, "public.loose") == checksum(pair.sink, "replica.loose")


def test_slot_dropped_by_someone_else_fails_with_the_remedy_and_resync_recovers(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.t (id int PRIMARY KEY)", "INSERT INTO public.t VALUES (1)")
    pair.run()
    pair.on_source(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
        " WHERE slot_name LIKE 'airflow_connectors_test%' AND database = current_database()"
    )
    with pytest.raises(SlotLostError, match="resync=true"):
        pair.run()
    pair.on_source("INSERT INTO public.t VALUES (2)")
    pair.run(resync=True)
    assert checksum(pair.source, "public.t") == checksum(pair.sink, "replica.t")


def test_continuous_run_stops_when_asked(pair: Pair) -> None:
    from airflow_connectors.cdc.engine.interface import RunCancelled

    pair.on_source("CREATE TABLE public.t (id int PRIMARY KEY)")
    pair.run()
    pair.on_source("INSERT INTO public.t SELECT generate_series(1, 100)")
    import time

    deadline = time.monotonic() + 30

    def stop_once_caught_up() -> bool:  # what a cancel does to a continuous run
        return checksum(pair.sink, "replica.t")[0] == 100 or time.monotonic() > deadline

    with pytest.raises(RunCancelled):
        pair.run(mode=RunMode.CONTINUOUS, should_stop=stop_once_caught_up)
    assert checksum(pair.source, "public.t") == checksum(pair.sink, "replica.t")


def test_skip_snapshots_starts_from_the_stream_alone(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.t (id int PRIMARY KEY, v text)", "INSERT INTO public.t VALUES (1, 'old')")
    streaming_only = pair.with_changes(
        source__postgres__replication_type={"logical_replication": {"skip_snapshots": True}}
    )
    result, reporter = streaming_only.run()
    assert EnginePhase.SNAPSHOTTING not in reporter.phases and checksum(pair.sink, "replica.t")[0] == 0
    pair.on_source("INSERT INTO public.t VALUES (2, 'new')", "UPDATE public.t SET v = 'changed' WHERE id = 1")
    streaming_only.run()
    with psycopg.connect(pair.sink) as sink:  # the update of a row it never copied inserts it: all it knows
        rows = sink.execute("SELECT id, v FROM replica.t ORDER BY id").fetchall()
    assert rows == [(1, "changed"), (2, "new")]


def test_a_catalog_naming_a_missing_table_fails_clearly(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.orders (id int PRIMARY KEY)")
    typo = pair.with_changes(source__postgres__catalog={"schemas": {"public": {"tables": {"orderz": {}}}}})
    with pytest.raises(EngineError, match="catalog: table public.orderz does not exist"):
        typo.run()


def test_replicating_a_database_onto_itself_is_refused(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.precious (id int PRIMARY KEY)", "INSERT INTO public.precious VALUES (1)")
    same = pair.connector.stored()
    same["sink"]["postgres"]["connection"] = same["source"]["postgres"]["connection"]
    same["sink"]["postgres"]["target_schema"] = "public"
    onto_itself = Pair(pair.source, pair.source, Connector.model_validate(same))
    with pytest.raises(EngineError, match="target_schema"):
        onto_itself.run()
    assert checksum(pair.source, "public.precious")[0] == 1  # nothing emptied
    same["sink"]["postgres"]["target_schema"] = "copy"  # another schema of the same database is fine
    into_copy = Pair(pair.source, pair.source, Connector.model_validate(same))
    into_copy.run()
    pair.on_source("INSERT INTO public.precious VALUES (2)")
    into_copy.run()  # copy.precious now exists: it is the sink, not a new source
    assert checksum(pair.source, "public.precious") == checksum(pair.source, "copy.precious")


def test_parallel_ctid_chunks_copy_the_same_rows_and_report_progress(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_connectors.cdc.engine import copy_pipe, snapshot

    monkeypatch.setattr(snapshot, "PAGES_PER_CHUNK", 50)  # ~20 chunks for this table
    monkeypatch.setattr(snapshot, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(copy_pipe, "CHECK_BYTES", 10_000)  # progress is looked at every 10 kB
    pair.on_source(
        "CREATE TABLE public.wide (id int PRIMARY KEY, v text)",
        "INSERT INTO public.wide SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 20000) i",
        "DELETE FROM public.wide WHERE id % 3 = 0",  # holes in the pages
    )
    result, reporter = pair.run()
    assert result.tables["public.wide"].rows == 20000 - 20000 // 3
    assert checksum(pair.source, "public.wide") == checksum(pair.sink, "replica.wide")
    assert any("MiB copied" in line for line in reporter.logs)
