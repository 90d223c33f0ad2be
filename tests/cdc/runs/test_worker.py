"""Run workers: retries, limits, cancellation, recovery of a SIGKILLed worker, no run executed twice."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest

from airflow_connectors.cdc.runs.pool import WorkerPool
from tests.cdc.runs import fake_engines
from tests.cdc.runs.client import RunsClient, wait_for


def test_transient_errors_are_retried_within_the_window(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("flaky-2", retry=60)
    run_id = runs_api.start(connector_id)
    assert runs_api.wait_run(connector_id, run_id)["state"] == "succeeded"
    assert [run for run, _ in fake_engines.executions()].count(run_id) == 3


def test_retry_window_exhausted_fails_with_the_last_error(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("transient", retry=2)
    run_id = runs_api.start(connector_id)
    run = runs_api.wait_run(connector_id, run_id)
    attempts = [run for run, _ in fake_engines.executions()].count(run_id)
    assert run["state"] == "failed" and attempts >= 2
    assert run["error"] == f"source unreachable (attempt {attempts})"


def test_slot_lost_fails_with_the_engine_message(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("slot-lost")
    run = runs_api.wait_run(connector_id, runs_api.start(connector_id))
    assert run["state"] == "failed" and "resync" in run["error"]
    assert runs_api.connector(connector_id)["status"]["runs_failed"] == 1


def test_engine_crash_fails_the_run_without_leaking_secrets(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("crash")
    run = runs_api.wait_run(connector_id, runs_api.start(connector_id))
    assert run["state"] == "failed" and run["error"].startswith("internal error: RuntimeError")
    assert runs_api.source["password"] not in run["error"] and "********" in run["error"]


def test_max_run_duration(runs_api: RunsClient) -> None:
    limits = {"max_run_duration_seconds": 1}
    catch_up = runs_api.create_connector("block", limits=limits)
    run = runs_api.wait_run(catch_up, runs_api.start(catch_up))
    assert run["state"] == "failed" and "max_run_duration_seconds" in run["error"]
    continuous = runs_api.create_connector("block", limits=limits)
    run = runs_api.wait_run(continuous, runs_api.start(continuous, mode="continuous"))
    assert run["state"] == "succeeded" and run["error"] is None


@pytest.mark.slow
def test_sigkilled_worker_run_is_recovered_and_finished(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("die-once")
    run_id = runs_api.start(connector_id)
    marker = fake_engines.control_dir() / f"{run_id}.started"
    wait_for(marker.exists, bool, 30, "first attempt started")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    run = runs_api.wait_run(connector_id, run_id, timeout=60)
    assert run["state"] == "succeeded", run
    pids = [pid for run, pid in fake_engines.executions() if run == run_id]
    assert len(pids) == 2 and pids[0] != pids[1]


@pytest.mark.slow
def test_two_service_processes_never_execute_a_run_twice(runs_api: RunsClient, second_pool: WorkerPool) -> None:
    connectors = [runs_api.create_connector("ok-slow") for _ in range(12)]
    runs = {runs_api.start(connector_id): connector_id for connector_id in connectors}
    for run_id, connector_id in runs.items():
        assert runs_api.wait_run(connector_id, run_id, timeout=60)["state"] == "succeeded"
    executed = Counter(run for run, _ in fake_engines.executions())
    assert {run: executed[run] for run in runs} == dict.fromkeys(runs, 1)


def test_stopping_a_worker_pool_requeues_its_run_for_another(
    runs_api: RunsClient, spare_pool: WorkerPool, runs_pool: WorkerPool
) -> None:
    connector_id = runs_api.create_connector("block")
    run_id = runs_api.start(connector_id)
    runs_api.wait_run(connector_id, run_id, lambda run: run["state"] == "snapshotting")
    first = [pid for run, pid in fake_engines.executions() if run == run_id]
    holder = spare_pool if first[0] in spare_pool.pids else runs_pool
    holder.stop()
    wait_for(
        lambda: [pid for run, pid in fake_engines.executions() if run == run_id], lambda p: len(p) == 2, 30, "rerun"
    )
    assert runs_api.run(connector_id, run_id)["state"] in ("queued", "snapshotting")
    assert runs_api.cancel(connector_id, run_id).status_code == 202
    assert runs_api.wait_run(connector_id, run_id)["state"] == "cancelled"


def test_scrub_masks_secrets_without_mangling_words() -> None:
    from airflow_connectors.cdc.connectors.secrets import scrub

    message = 'syntax error at or near "x"; connection "host=h password=x user=u" failed for postgresql://u:x@h/db'
    assert scrub(message, ["x"]) == (
        'syntax error at or near "********"; connection "host=h password=******** user=u" failed for'
        " postgresql://u:********@h/db"
    )
    assert scrub("password authentication failed: pass", ["pass"]) == "password authentication failed: ********"
    long_secret = "s3cr3t-long-password"
    assert scrub(f"dsn=abc{long_secret}def", [long_secret]) == "dsn=abc********def"
