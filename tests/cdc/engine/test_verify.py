"""Verification on real servers: equal replicas are reported equal (types mapped differently included, and while
the source keeps writing), a corrupted sink row is caught and named, chunked comparisons find the differing keys."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from airflow_connectors.cdc.engine import execute_run, verify
from airflow_connectors.cdc.engine.interface import EngineError, RunMode, RunRequest, RunResult, VerificationFailed
from airflow_connectors.cdc.engine.naming import slot_name
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.sink_names import recorded
from airflow_connectors.cdc.engine.source_catalog import build_plans
from airflow_connectors.cdc.engine.verify import open_consistent_point, verify_tables
from tests.cdc.engine.conftest import Pair, RecordingReporter


def verify_run(pair: Pair, mode: RunMode = RunMode.CATCH_UP) -> RunResult:
    request = RunRequest(run_id=str(uuid.uuid4()), mode=mode, verify=True)
    return execute_run(pair.connector, request, RecordingReporter(), lambda: False)


def on_sink(pair: Pair, *statements: str) -> None:
    with psycopg.connect(pair.sink, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


KINDS = (
    "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN public.positive AS numeric(8, 2) CHECK (VALUE > 0)",
    "CREATE TYPE public.pair AS (a int, b text)",
    """CREATE TABLE public.kinds (id bigint PRIMARY KEY, m public.mood, moods public.mood[], p public.positive,
        pr public.pair, t text, f float8, ts timestamptz, b bytea, j jsonb, iv interval, u uuid)""",
    """INSERT INTO public.kinds SELECT i, (ARRAY['sad','ok','happy']::public.mood[])[1 + i % 3],
        ARRAY['ok', 'happy']::public.mood[], i + 0.5, ROW(i, 'p' || i)::public.pair, E'tab\\there ' || i,
        i / 3.0, timestamptz '2024-01-01 12:00+02' + i * interval '1 minute', '\\x00ff'::bytea,
        jsonb_build_object('i', i), i * interval '1 second', gen_random_uuid() FROM generate_series(1, 300) i""",
    "CREATE TABLE public.loose (a int, b text)",
    "ALTER TABLE public.loose REPLICA IDENTITY FULL",
    "INSERT INTO public.loose VALUES (1, 'x'), (1, 'x'), (2, NULL)",
    "CREATE TABLE public.named (code text PRIMARY KEY, n int)",
    "INSERT INTO public.named SELECT 'k' || i, i FROM generate_series(1, 200) i",
)


def test_a_replica_verifies_equal_with_types_the_sink_maps_differently(pair: Pair) -> None:
    pair.on_source(*KINDS)
    pair.run()
    pair.on_source(
        "UPDATE public.kinds SET m = 'happy', f = f * 2 WHERE id % 7 = 0", "DELETE FROM public.loose WHERE a = 2"
    )
    result = verify_run(pair)
    verification = result.verification
    assert verification is not None and verification.status == "equal", verification
    assert set(verification.tables) == {"public.kinds", "public.loose", "public.named"}
    kinds = verification.tables["public.kinds"]
    assert (kinds.source_rows, kinds.sink_rows, kinds.sink_table) == (300, 300, "replica.kinds")
    assert kinds.source_checksum == kinds.sink_checksum != "0"
    assert verification.tables["public.loose"].sink_rows == 2
    assert result.applied_lsn is not None and verification.lsn


def test_a_corrupted_sink_row_fails_the_run_naming_table_key_and_remedy(pair: Pair) -> None:
    pair.on_source(*KINDS)
    pair.run()
    on_sink(
        pair, "UPDATE replica.kinds SET t = 'corrupted' WHERE id = 42", "DELETE FROM replica.named WHERE code = 'k7'"
    )
    with pytest.raises(VerificationFailed) as caught:
        verify_run(pair)
    message = str(caught.value)
    assert "public.kinds -> replica.kinds" in message and "id=42 different" in message
    assert "public.named -> replica.named" in message and "code=k7 missing in sink" in message
    assert '"resync": ["public.kinds", "public.named"]' in message
    verification = caught.value.result.verification
    assert verification is not None and verification.differing() == ["public.kinds", "public.named"]
    kinds = verification.tables["public.kinds"]
    assert kinds.source_rows == kinds.sink_rows == 300 and kinds.source_checksum != kinds.sink_checksum
    assert [(k.key, k.issue) for k in kinds.differing_keys] == [({"id": "42"}, "different")]
    assert verification.tables["public.loose"].status == "equal"
    pair.run(resync=("public.kinds", "public.named"))  # the remedy the message names
    assert verify_run(pair).verification.status == "equal"  # type: ignore[union-attr]


def test_verification_is_exact_while_the_source_keeps_writing(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.busy (id int PRIMARY KEY, n int NOT NULL)",
        "INSERT INTO public.busy SELECT i, 0 FROM generate_series(1, 2000) i",
    )
    pair.run()
    done = threading.Event()
    writes = 0

    def write() -> None:
        nonlocal writes
        with psycopg.connect(pair.source, autocommit=True) as conn:
            while not done.is_set():
                conn.execute("UPDATE public.busy SET n = n + 1 WHERE id = %s", (writes % 2000 + 1,))
                conn.execute("INSERT INTO public.busy VALUES (%s, 0)", (100000 + writes,))
                writes += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        results = [verify_run(pair) for _ in range(3)]
    finally:
        done.set()
        writer.join()
    assert writes > 50  # the source really moved while the runs verified
    for result in results:
        assert result.verification is not None and result.verification.status == "equal", result.verification


def test_a_run_stopped_by_max_rows_before_its_point_does_not_claim_a_verification(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.t (id int PRIMARY KEY)")
    pair.run()
    pair.on_source(*(f"INSERT INTO public.t VALUES ({i})" for i in range(30)))
    limited = pair.with_changes(limits={"max_rows_per_run": 5})
    request = RunRequest(run_id=str(uuid.uuid4()), verify=True)
    with pytest.raises(EngineError, match="stopped at limits.max_rows_per_run before the point it verifies at"):
        execute_run(limited.connector, request, RecordingReporter(), lambda: False)
    assert verify_run(pair).verification.status == "equal"  # type: ignore[union-attr]


def test_only_a_catch_up_run_verifies(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.t (id int PRIMARY KEY)")
    with pytest.raises(EngineError, match="only a catch_up run can verify"):
        verify_run(pair, RunMode.CONTINUOUS)


def _plans(pair: Pair) -> list[TablePlan]:
    connector = pair.connector
    with psycopg.connect(pair.source) as source, psycopg.connect(pair.sink) as sink:
        names = recorded(sink, connector.id, "replica")
        plans = build_plans(source, connector.source.postgres, "replica", lambda tables: {t: names[t] for t in tables})
    return list(plans.values())


def test_chunked_comparison_names_missing_extra_and_different_keys(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.ranged (id int PRIMARY KEY, v text)",  # integer key: key ranges
        "INSERT INTO public.ranged SELECT i, 'v' || i FROM generate_series(1, 5000) i",
        "CREATE TABLE public.hashed (code text PRIMARY KEY, v int)",  # collatable key: hash buckets
        "INSERT INTO public.hashed SELECT 'c' || i, i FROM generate_series(1, 3000) i",
        "CREATE TABLE public.loose (a int, b text)",
        "ALTER TABLE public.loose REPLICA IDENTITY FULL",
        "INSERT INTO public.loose SELECT i % 100, 'x' FROM generate_series(1, 1000) i",
        "ANALYZE",
    )
    pair.run()
    on_sink(
        pair,
        "DELETE FROM replica.ranged WHERE id = 4000",
        "INSERT INTO replica.ranged VALUES (9999999, 'extra')",
        "UPDATE replica.ranged SET v = NULL WHERE id = 17",
        "UPDATE replica.hashed SET v = -1 WHERE code = 'c2500'",
        "DELETE FROM replica.loose WHERE ctid = (SELECT min(ctid) FROM replica.loose WHERE a = 5)",
    )
    point = open_consistent_point(pair.connector.source.postgres.connection.conninfo(), slot_name(pair.connector.id))
    try:
        verification = verify_tables(
            source_conninfo=pair.connector.source.postgres.connection.conninfo(),
            sink_conninfo=pair.connector.sink.postgres.connection.conninfo(),
            point=point,
            plans=_plans(pair),
            workers=3,
            should_stop=lambda: False,
            chunk_rows=400,
        )
    finally:
        point.close()
    ranged, hashed, loose = (verification.tables[f"public.{name}"] for name in ("ranged", "hashed", "loose"))
    assert ranged.chunks > 5 and hashed.chunks > 5 and loose.chunks > 1
    assert {(k.key["id"], k.issue) for k in ranged.differing_keys} == {
        ("4000", "missing_in_sink"),
        ("9999999", "extra_in_sink"),
        ("17", "different"),
    }
    # 4000 and 9999999 share the last, open-ended range when the sampled bounds all lie below 4000.
    assert ranged.differing_chunks in (2, 3) and (ranged.source_rows, ranged.sink_rows) == (5000, 5000)
    assert [(k.key, k.issue) for k in hashed.differing_keys] == [({"code": "c2500"}, "different")]
    assert hashed.differing_chunks == 1
    assert [k.issue for k in loose.differing_keys] == ["missing_in_sink"] and loose.sink_rows == 999


@pytest.mark.parametrize("sampled_per_chunk", [100, 0], ids=["ranges", "sample-missed"])
def test_a_partitioned_table_replicated_as_its_root_is_verified_across_partitions(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, sampled_per_chunk: int
) -> None:
    """A table of few pages: the block sample for range bounds may find nothing (0: always), and then hash buckets
    still split it into chunks."""
    monkeypatch.setattr(verify, "_SAMPLE_PER_CHUNK", sampled_per_chunk)
    pair.on_source(
        "CREATE TABLE public.events (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)",
        "CREATE TABLE public.events_a PARTITION OF public.events FOR VALUES FROM (0) TO (500)",
        "CREATE TABLE public.events_b PARTITION OF public.events FOR VALUES FROM (500) TO (10000)",
        "INSERT INTO public.events SELECT i, 'e' || i FROM generate_series(1, 3000) i",
        "ANALYZE public.events",
    )
    rooted = pair.with_changes(source__postgres__partitions_as_root=True)
    rooted.run()
    on_sink(pair, "UPDATE replica.events SET v = 'corrupted' WHERE id = 2500")
    point = open_consistent_point(pair.connector.source.postgres.connection.conninfo(), slot_name(pair.connector.id))
    try:
        verification = verify_tables(
            source_conninfo=pair.connector.source.postgres.connection.conninfo(),
            sink_conninfo=pair.connector.sink.postgres.connection.conninfo(),
            point=point,
            plans=_plans(rooted),
            workers=2,
            should_stop=lambda: False,
            chunk_rows=500,
        )
    finally:
        point.close()
    events = verification.tables["public.events"]
    assert events.chunks > 2 and (events.source_rows, events.sink_rows) == (3000, 3000)
    assert [(k.key, k.issue) for k in events.differing_keys] == [({"id": "2500"}, "different")]
