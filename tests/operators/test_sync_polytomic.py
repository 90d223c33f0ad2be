"""The generic operators and sensor through a real Airflow against the fake Polytomic (PolytomicHook underneath)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.operators.connector import SyncConnectorOperator
from airflow_connectors.sensors.sync import ConnectorSyncSensor
from tests.fakes.polytomic import FakePolytomic
from tests.fakes.polytomic_sdk import request_problems
from tests.fakes.server import rate_limited
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.operators.cdc_support import assert_no_secret
from tests.operators.test_sync_cdc import WorkerLostAfterStart

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONN_ID = "polytomic_default"
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def run_sync(
    airflow_env: AirflowEnv, sync_id: str, operator: type[SyncConnectorOperator] = SyncConnectorOperator, **kwargs: Any
) -> DagRunResult:
    from airflow.sdk import DAG

    with DAG(f"pt_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        operator(task_id="sync", conn_id=CONN_ID, connector_id=sync_id, poll_interval=0.2, **kwargs)
    return airflow_env.run_dag(dag)


@pytest.fixture
def fake(fake_polytomic: FakePolytomic) -> Iterator[FakePolytomic]:
    """The fake Polytomic; afterwards, every request sent must be one the official SDK could have sent."""
    yield fake_polytomic
    problems = [problem for request in fake_polytomic.requests for problem in request_problems(request)]
    assert not problems, problems


@pytest.mark.parametrize("deferrable", MODES)
def test_bulk_sync_succeeds_by_execution_id(airflow_env: AirflowEnv, fake: FakePolytomic, deferrable: bool) -> None:
    sync_id = fake.add_bulk_sync()

    result = run_sync(airflow_env, sync_id, deferrable=deferrable, resync=True, sync_options={"fetch_mode": "full"})

    assert result.task_states == {"sync": "success"}, result.logs
    [execution] = fake.executions_of(sync_id)
    assert result.xcom("sync")["run_id"] == execution.id
    assert execution.request == {"fetch_mode": "full", "resync_mode": "resync"}
    assert result.xcom("sync", "sync_result")["rows"] == 1234
    assert result.xcom("sync", "run_url") == f"https://app.polytomic.com/bulk-syncs/{sync_id}"
    assert_no_secret(result.logs + repr(result.xcoms), fake.api_key)


@pytest.mark.parametrize("deferrable", MODES)
def test_failed_execution_fails_the_task(airflow_env: AirflowEnv, fake: FakePolytomic, deferrable: bool) -> None:
    sync_id = fake.add_bulk_sync()
    fake.outcomes[sync_id] = "failed"

    result = run_sync(airflow_env, sync_id, deferrable=deferrable)

    assert result.task_states == {"sync": "failed"}
    assert "ended failed (3 errors)" in result.logs


@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize("kind", ["bulk", "model"])
def test_timeout_cancels_the_execution(
    airflow_env: AirflowEnv, fake: FakePolytomic, deferrable: bool, kind: str
) -> None:
    """A model sync execution is cancelled too (issue 15.2), each by its own execution's cancel call."""
    sync_id = fake.add_bulk_sync() if kind == "bulk" else "model-sync-1"
    fake.run_seconds = 120

    result = run_sync(airflow_env, sync_id, deferrable=deferrable, timeout=1, sync_options={"sync_kind": kind})

    assert result.task_states == {"sync": "failed"}
    assert "run cancelled" in result.logs
    [execution] = fake.executions_of(sync_id)
    assert execution.status in ("canceling", "canceled")
    base = "bulk/syncs" if kind == "bulk" else "syncs"
    assert fake.requests_to("POST", f"/api/{base}/{sync_id}/executions/{execution.id}/cancel")


@pytest.mark.parametrize("deferrable", MODES)
def test_retry_reattaches_and_succeeds_without_a_second_execution(
    airflow_env: AirflowEnv, fake: FakePolytomic, deferrable: bool
) -> None:
    sync_id = fake.add_bulk_sync()
    fake.run_seconds = 3

    result = run_sync(
        airflow_env,
        sync_id,
        operator=WorkerLostAfterStart,
        deferrable=deferrable,
        retries=1,
        retry_delay=timedelta(0),
    )

    assert result.task_states == {"sync": "success"}, result.logs
    assert result.try_numbers["sync"] == 2
    [execution] = fake.executions_of(sync_id)
    assert f"re-attaching to run {execution.id} started by an earlier try" in result.logs


def test_schedule_unpause_and_a_429_storm(airflow_env: AirflowEnv, fake: FakePolytomic) -> None:
    sync_id = fake.add_bulk_sync(active=False)
    fake.inject(rate_limited(0.2), times=3)

    result = run_sync(airflow_env, sync_id, schedule={"frequency": "daily", "hour": "3"}, unpause=True, deferrable=True)

    assert result.task_states == {"sync": "success"}, result.logs
    assert fake.bulk_syncs[sync_id]["active"] is True
    assert fake.bulk_syncs[sync_id]["default_schedule"]["frequency"] == "daily"  # issue 15.1
    assert fake.bulk_syncs[sync_id]["default_schedule"]["hour"] == "3"
    assert "429" in result.logs


def test_model_sync_and_sensor_on_the_reference(airflow_env: AirflowEnv, fake: FakePolytomic) -> None:
    from airflow.sdk import DAG

    with DAG(f"pt_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        start = SyncConnectorOperator(
            task_id="start",
            conn_id=CONN_ID,
            connector_id="model-sync-1",
            resync=True,
            sync_options={"sync_kind": "model"},
            wait_for_completion=False,
        )
        ConnectorSyncSensor(
            task_id="wait", conn_id=CONN_ID, sync_ref=start.output, min_rows=1000, poke_interval=0.2, mode="reschedule"
        )

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"start": "success", "wait": "success"}, result.logs
    [execution] = fake.executions_of("model-sync-1")
    assert execution.request == {"resync": True} and execution.status == "completed"
    assert result.xcom("wait", "run_url") == "https://app.polytomic.com/syncs/model-sync-1"


def test_an_execution_started_elsewhere_is_awaited_not_duplicated(airflow_env: AirflowEnv, fake: FakePolytomic) -> None:
    sync_id = fake.add_bulk_sync()
    fake.run_seconds = 1
    foreign = PolytomicHook(CONN_ID).trigger_sync(sync_id)

    result = run_sync(airflow_env, sync_id)

    assert result.task_states == {"sync": "success"}, result.logs
    assert f"already has an active run {foreign.run_id}" in result.logs
    assert len(fake.executions_of(sync_id)) == 1
