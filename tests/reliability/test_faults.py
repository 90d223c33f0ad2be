"""Faults during runs, each ending with source and sink equal (checksums) and nothing applied twice:
SIGKILL of the service mid-snapshot and mid-stream, sink and source restarts, the walsender killed, the slot dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
import pytest

from tests.fixtures.cdc_service import CdcService
from tests.reliability.conftest import LEASE, Replication

pytestmark = pytest.mark.slow

TABLES = ("public.big", "public.events")


def prepare(r: Replication, rows: int) -> None:
    r.on_source(
        "CREATE TABLE public.big (id int PRIMARY KEY, v text)",
        # Append-only and keyless: a change applied twice would show up as an extra row.
        "CREATE TABLE public.events (n int, note text)",
        "ALTER TABLE public.events REPLICA IDENTITY FULL",
        f"INSERT INTO public.big SELECT i, md5(i::text) FROM generate_series(1, {rows}) i",
        "INSERT INTO public.events SELECT i, 'before' FROM generate_series(1, 100) i",
    )


def restart_service(r: Replication, start_cdc_service: Callable[..., CdcService]) -> None:
    old = r.service
    r.service = start_cdc_service(old.state_dsn, workers=1, token=old.token, secret_key=old.secret_key, env=LEASE)


def finish_and_compare(r: Replication, run_id: str) -> None:
    run = r.wait(run_id, timeout=180)
    assert run["state"] == "succeeded", run
    r.on_source("INSERT INTO public.events VALUES (1000, 'after')")
    last = r.wait(r.start(), timeout=120)
    assert last["state"] == "succeeded", last
    r.equal(*TABLES)


def test_sigkill_during_snapshot(replication: Replication, start_cdc_service: Callable[..., CdcService]) -> None:
    r = replication
    prepare(r, 1_500_000)
    run_id = r.start()
    r.wait(run_id, lambda run: run["state"] == "snapshotting")
    r.service.kill()
    r.on_source("INSERT INTO public.events SELECT i, 'while down' FROM generate_series(200, 300) i")
    restart_service(r, start_cdc_service)
    finish_and_compare(r, run_id)


def test_sigkill_during_streaming(replication: Replication, start_cdc_service: Callable[..., CdcService]) -> None:
    r = replication
    prepare(r, 300_000)
    assert r.wait(r.start())["state"] == "succeeded"
    r.on_source(
        "BEGIN; UPDATE public.big SET v = v || 'x';"
        " INSERT INTO public.events SELECT i, 'big tx' FROM generate_series(1, 50) i; COMMIT"
    )
    for batch in range(20):
        r.on_source(f"INSERT INTO public.events VALUES ({batch}, 'small tx')")
    run_id = r.start()
    r.wait(run_id, lambda run: run["state"] == "streaming")
    r.service.kill()
    restart_service(r, start_cdc_service)
    finish_and_compare(r, run_id)


@pytest.mark.parametrize("which", ["sink", "source", "walsender"])
def test_database_faults_mid_stream_are_retried(replication: Replication, which: str) -> None:
    r = replication
    prepare(r, 200_000)
    assert r.wait(r.start())["state"] == "succeeded"
    r.on_source(
        "UPDATE public.big SET v = v || 'y'", "INSERT INTO public.events SELECT i, 'z' FROM generate_series(1, 500) i"
    )
    run_id = r.start()
    r.wait(run_id, lambda run: run["state"] == "streaming")
    if which == "sink":
        r.sink_server.restart()
    elif which == "source":
        r.source_server.restart()
    else:
        with psycopg.connect(r.source, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE active_pid IS NOT NULL AND database = current_database()"
            )
    finish_and_compare(r, run_id)


def test_slot_dropped_by_someone_else_then_resync(replication: Replication) -> None:
    r = replication
    prepare(r, 1000)
    assert r.wait(r.start())["state"] == "succeeded"
    with psycopg.connect(r.source, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active"
            " AND database = current_database()"
        )
    r.on_source("INSERT INTO public.events VALUES (5000, 'lost?')")
    failed = r.wait(r.start())
    assert failed["state"] == "failed" and "resync=true" in failed["error"]
    recovered = r.wait(r.start(resync=True))
    assert recovered["state"] == "succeeded", recovered
    r.equal(*TABLES)


def test_sigkill_during_a_batch_commit(replication: Replication, start_cdc_service: Callable[..., CdcService]) -> None:
    """The batch is applied and waits to commit (its checkpoint row is locked by us) when the service dies."""
    r = replication
    prepare(r, 1000)
    assert r.wait(r.start())["state"] == "succeeded"
    r.on_source(
        "UPDATE public.big SET v = v || 'c'",
        "INSERT INTO public.events SELECT i, 'in the batch' FROM generate_series(1, 300) i",
    )
    with psycopg.connect(r.sink) as blocker:
        blocker.execute("SELECT * FROM _airflow_connectors.checkpoints FOR UPDATE")
        run_id = r.start()
        with psycopg.connect(r.sink, autocommit=True) as probe:
            deadline = time.monotonic() + 60
            while not probe.execute(  # the run's batch transaction now waits for our lock
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock')"
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the batch never reached its commit"
                time.sleep(0.05)
        r.service.kill()
        blocker.rollback()
    restart_service(r, start_cdc_service)
    finish_and_compare(r, run_id)
