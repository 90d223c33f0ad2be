"""Two connectors' first runs into one sink at once: the sink's bookkeeping schema and the target schema are created
by whichever comes first, and both runs succeed (``CREATE ... IF NOT EXISTS`` alone races into UniqueViolation)."""

from __future__ import annotations

import threading
import uuid

import psycopg

from airflow_connectors.cdc.engine import checkpoint, drop_source_objects, sink_schema
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from tests.cdc.engine.conftest import Pair, checksum


def test_concurrent_creators_of_the_sink_schemas_all_succeed(pair: Pair) -> None:
    errors: list[BaseException] = []
    for attempt in range(5):
        barrier = threading.Barrier(6)

        def create(i: int, attempt: int = attempt, barrier: threading.Barrier = barrier) -> None:
            plan = TablePlan(
                "public", f"t{i}", f"target_{attempt}", f"t{i}", (ColumnPlan("id", "integer", "integer", 23, True),),
                ("id",), "d", "r", True,
            )  # fmt: skip
            with psycopg.connect(pair.sink, autocommit=True) as conn:
                barrier.wait()
                try:
                    checkpoint.ensure_state_schema(conn)
                    sink_schema.create_table(conn, plan)
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(exc)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(pair.sink, autocommit=True) as conn:
            conn.execute("DROP SCHEMA _airflow_connectors CASCADE")
    assert errors == []


def test_two_connectors_first_runs_at_once(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.a (id int PRIMARY KEY, v text)",
        "INSERT INTO public.a SELECT i, 'v' FROM generate_series(1, 100) i",
    )
    other = pair.with_changes(id=f"test-{uuid.uuid4().hex[:8]}", sink__postgres__target_schema="replica2")
    failures: list[BaseException] = []

    def run(p: Pair) -> None:
        try:
            p.run()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(p,)) for p in (pair, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        source = checksum(pair.source, "public.a")
        assert source == checksum(pair.sink, "replica.a") == checksum(pair.sink, "replica2.a")
    finally:
        drop_source_objects(other.connector)
