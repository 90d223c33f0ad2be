"""The generic operators and sensor through a real Airflow against the fake Polytomic (PolytomicHook underneath)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.operators.connector import SyncConnectorOperator
from airflow_connectors.sensors.sync import ConnectorSyncSensor
from tests.fakes.polytomic import FakePolytomic
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


def executions_of(fake: FakePolytomic, sync_id: str) -> list[dict[str, Any]]:
    return [execution for execution in fake.executions.values() if execution["sync_id"] == sync_id]


@pytest.mark.parametrize("deferrable", MODES)
def test_bulk_sync_succeeds_by_execution_id(
    airflow_env: AirflowEnv, fake_polytomic: FakePolytomic, deferrable: bool
) -> None:
    sync_id = fake_polytomic.add_bulk_sync()

    result = run_sync(airflow_env, sync_id, deferrable=deferrable, resync=True, sync_options={"fetch_mode": "full"})

    assert result.task_states == {"sync": "success"}, result.logs
    [execution] = executions_of(fake_polytomic, sync_id)
    assert result.xcom("sync")["run_id"] == execution["id"]
    assert execution["request"] == {"fetch_mode": "full", "resync_mode": "resync"}
    assert result.xcom("sync", "sync_result")["rows"] == 1234
    assert result.xcom("sync", "run_url") == f"https://app.polytomic.com/bulk-syncs/{sync_id}"
    assert_no_secret(result.logs + repr(result.xcoms), fake_polytomic.api_key)


@pytest.mark.parametrize("deferrable", MODES)
def test_failed_execution_fails_the_task(
    airflow_env: AirflowEnv, fake_polytomic: FakePolytomic, deferrable: bool
) -> None:
    sync_id = fake_polytomic.add_bulk_sync()
    fake_polytomic.outcomes[sync_id] = "failed"

    result = run_sync(airflow_env, sync_id, deferrable=deferrable)

    assert result.task_states == {"sync": "failed"}
    assert "ended failed (3 errors)" in result.logs


@pytest.mark.parametrize("deferrable", MODES)
def test_timeout_cancels_the_execution(
    airflow_env: AirflowEnv, fake_polytomic: FakePolytomic, deferrable: bool
) -> None:
    sync_id = fake_polytomic.add_bulk_sync()
    fake_polytomic.run_seconds = 120

    result = run_sync(airflow_env, sync_id, deferrable=deferrable, timeout=1)

    assert result.task_states == {"sync": "failed"}
    assert "run cancelled" in result.logs
    [execution] = executions_of(fake_polytomic, sync_id)
    assert execution["status"] in ("canceling", "canceled")


@pytest.mark.parametrize("deferrable", MODES)
def test_retry_reattaches_and_succeeds_without_a_second_execution(
    airflow_env: AirflowEnv, fake_polytomic: FakePolytomic, deferrable: bool
) -> None:
    sync_id = fake_polytomic.add_bulk_sync()
    fake_polytomic.run_seconds = 3

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
    [execution] = executions_of(fake_polytomic, sync_id)
    assert f"re-attaching to run {execution['id']} started by an earlier try" in result.logs


def test_schedule_unpause_and_a_429_storm(airflow_env: AirflowEnv, fake_polytomic: FakePolytomic) -> None:
    sync_id = fake_polytomic.add_bulk_sync(active=False)
    fake_polytomic.inject(rate_limited(0.2), times=3)

    result = run_sync(airflow_env, sync_id, schedule={"frequency": "daily", "hour": "3"}, unpause=True, deferrable=True)

    assert result.task_states == {"sync": "success"}, result.logs
    assert fake_polytomic.bulk_syncs[sync_id]["active"] is True
    assert fake_polytomic.bulk_syncs[sync_id]["schedule"]["frequency"] == "daily"
    assert "429" in result.logs


def test_model_sync_and_sensor_on_the_reference(airflow_env: AirflowEnv, fake_polytomic: FakePolytomic) -> None:
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
    [execution] = executions_of(fake_polytomic, "model-sync-1")
    assert execution["request"] == {"resync": True} and execution["status"] == "completed"
    assert result.xcom("wait", "run_url") == "https://app.polytomic.com/syncs/model-sync-1"


def test_an_execution_started_elsewhere_is_awaited_not_duplicated(
    airflow_env: AirflowEnv, fake_polytomic: FakePolytomic
) -> None:
    sync_id = fake_polytomic.add_bulk_sync()
    fake_polytomic.run_seconds = 1
    foreign = PolytomicHook(CONN_ID).trigger_sync(sync_id)

    result = run_sync(airflow_env, sync_id)

    assert result.task_states == {"sync": "success"}, result.logs
    assert f"already has an active run {foreign.run_id}" in result.logs
    assert len(executions_of(fake_polytomic, sync_id)) == 1
