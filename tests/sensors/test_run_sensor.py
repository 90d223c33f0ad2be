"""ReplicationRunSensor through a real Airflow (dag.test) against the real CDC core service (fake engine)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from airflow_connectors.operators.connector import SyncConnectorOperator
from airflow_connectors.sensors.run import ReplicationRunSensor
from tests.cdc.runs.client import RunsClient
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.fixtures.cdc_service import CdcService
from tests.operators.cdc_support import assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

MODES = [
    pytest.param({"mode": "poke"}, id="poke"),
    pytest.param({"mode": "reschedule"}, id="reschedule"),
    pytest.param({"deferrable": True}, id="deferrable"),
]


def run_sensor(airflow_env: AirflowEnv, conn_id: str, connector_id: str, run_id: str, **kwargs: Any) -> DagRunResult:
    from airflow.sdk import DAG

    with DAG(f"sensor_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        ReplicationRunSensor(
            task_id="wait", conn_id=conn_id, connector_id=connector_id, run_id=run_id, poke_interval=0.2, **kwargs
        )
    return airflow_env.run_dag(dag)


@pytest.mark.parametrize("mode", MODES)
def test_succeeds_when_the_run_succeeded(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, fake_cdc: CdcService, mode: dict[str, Any]
) -> None:
    connector_id = runs.create_connector("ok")
    run_id = runs.start(connector_id)

    result = run_sensor(airflow_env, cdc_conn, connector_id, run_id, min_rows=10, max_lag_bytes=0, **mode)

    assert result.task_states == {"wait": "success"}, result.logs
    assert result.xcom("wait", "run_url").endswith(f"/connectors/{connector_id}/runs/{run_id}")
    assert_no_secret(result.logs + repr(result.xcoms), fake_cdc.token)


@pytest.mark.parametrize("mode", MODES)
def test_fails_with_the_run_error(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, mode: dict[str, Any]
) -> None:
    connector_id = runs.create_connector("slot-lost")
    run_id = runs.start(connector_id)

    result = run_sensor(airflow_env, cdc_conn, connector_id, run_id, **mode)

    assert result.task_states == {"wait": "failed"}
    assert f"connector {connector_id} run {run_id} failed: replication slot is lost" in result.logs


@pytest.mark.parametrize("mode", MODES)
def test_fails_when_the_run_was_cancelled(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, mode: dict[str, Any]
) -> None:
    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)
    assert runs.cancel(connector_id, run_id).status_code == 202

    result = run_sensor(airflow_env, cdc_conn, connector_id, run_id, **mode)

    assert result.task_states == {"wait": "failed"}
    assert f"run {run_id} was cancelled" in result.logs


def test_min_rows_assertion(airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("ok")
    run_id = runs.start(connector_id)

    result = run_sensor(airflow_env, cdc_conn, connector_id, run_id, min_rows=11, deferrable=True)

    assert result.task_states == {"wait": "failed"}
    assert "moved 10 rows, fewer than min_rows=11" in result.logs


@pytest.mark.parametrize(
    "mode", [pytest.param({"mode": "poke"}, id="poke"), pytest.param({"deferrable": True}, id="deferrable")]
)
def test_timeout_fails_without_cancelling_a_run_it_does_not_own(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, mode: dict[str, Any]
) -> None:
    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)

    result = run_sensor(airflow_env, cdc_conn, connector_id, run_id, timeout=2, **mode)

    assert result.task_states == {"wait": "failed"}
    assert runs.run(connector_id, run_id)["state"] != "cancelled"
    assert runs.cancel(connector_id, run_id).status_code == 202


def test_run_id_templated_from_the_sync_operator(airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient) -> None:
    from airflow.sdk import DAG

    connector_id = runs.create_connector("ok")
    with DAG(f"sensor_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        start = SyncConnectorOperator(
            task_id="start", conn_id=cdc_conn, connector_id=connector_id, wait_for_completion=False
        )
        wait = ReplicationRunSensor(
            task_id="wait",
            conn_id=cdc_conn,
            connector_id="{{ ti.xcom_pull(task_ids='start')['connector_id'] }}",
            run_id="{{ ti.xcom_pull(task_ids='start')['run_id'] }}",
            poke_interval=0.2,
            deferrable=True,
        )
        start >> wait

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"start": "success", "wait": "success"}, result.logs


def test_refuses_a_connection_of_another_api(airflow_env: AirflowEnv, airflow_connection, runs: RunsClient) -> None:
    conn_id = airflow_connection("not_cdc", conn_type="fivetran_api", host="http://127.0.0.1:9", password="k")

    result = run_sensor(airflow_env, conn_id, "c", "r")

    assert result.task_states == {"wait": "failed"}
    assert "not_cdc is a fivetran_api connection, expected cdc_core" in result.logs


def test_execution_timeout_bounds_a_deferred_sensor(airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient) -> None:
    from datetime import timedelta

    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)

    result = run_sensor(
        airflow_env, cdc_conn, connector_id, run_id, deferrable=True, execution_timeout=timedelta(seconds=2)
    )

    assert result.task_states == {"wait": "failed"}
    assert "deadline passed while the run was" in result.logs
    assert runs.cancel(connector_id, run_id).status_code == 202
