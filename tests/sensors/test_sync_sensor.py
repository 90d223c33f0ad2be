"""ConnectorSyncSensor on an API without run ids (Fivetran, fake server): never a stale success (issue 15 item 8).

Fivetran tells syncs apart only by when they ended. Given just a connector id, an old ``succeeded_at`` looked like
success while the sync the DAG needs was still ``syncing``; the sensor now takes a "completed after" time or
refuses.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_connectors.hooks.base import SyncState
from airflow_connectors.hooks.fivetran import FivetranHook
from airflow_connectors.sensors.sync import ConnectorSyncSensor
from tests.fakes.fivetran import FakeFivetran
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONN_ID = "fivetran_default"
MODES = [pytest.param({"mode": "poke"}, id="poke"), pytest.param({"deferrable": True}, id="deferrable")]


def synced_connection(fake: FakeFivetran) -> str:
    """A connection whose last sync succeeded (an old ``succeeded_at``)."""
    hook = FivetranHook(CONN_ID)
    connector_id = str(hook.create_connector({"group_id": "g", "service": "postgres", "config": {}})["id"])
    status = hook.wait_for_sync(hook.trigger_sync(connector_id), deadline=time.time() + 30, poll_interval=0.05)
    assert status is not None and status.state is SyncState.SUCCESS
    return connector_id


def run_sensor(airflow_env: AirflowEnv, conn_id: str = CONN_ID, **kwargs: Any) -> DagRunResult:
    from airflow.sdk import DAG

    with DAG(f"sensor_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        ConnectorSyncSensor(task_id="wait", conn_id=conn_id, poke_interval=0.2, **kwargs)
    return airflow_env.run_dag(dag)


@pytest.mark.parametrize("mode", MODES)
def test_an_old_success_while_a_sync_runs_is_not_a_success(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, mode: dict[str, Any]
) -> None:
    connector_id = synced_connection(fake_fivetran)
    after = datetime.now(UTC)
    fake_fivetran.sync_seconds = 120
    FivetranHook(CONN_ID).trigger_sync(connector_id)

    result = run_sensor(
        airflow_env,
        connector_id=connector_id,
        completed_after="{{ params.after }}",
        params={"after": after.isoformat()},
        timeout=2,
        **mode,
    )

    assert result.task_states == {"wait": "failed"}, result.logs
    assert "running (syncing)" in result.logs
    connection = FivetranHook(CONN_ID).get_connector(connector_id)
    assert connection["status"]["sync_state"] == "syncing"
    assert datetime.fromisoformat(connection["succeeded_at"]) < after  # the stale success the sensor refused


@pytest.mark.parametrize("mode", MODES)
def test_the_first_sync_to_end_after_the_time_is_a_success(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, mode: dict[str, Any]
) -> None:
    connector_id = synced_connection(fake_fivetran)
    after = datetime.now(UTC)
    fake_fivetran.sync_reads[connector_id] = 2  # the sensor's first two reads see it running
    FivetranHook(CONN_ID).trigger_sync(connector_id)

    result = run_sensor(airflow_env, connector_id=connector_id, completed_after=after, timeout=30, **mode)

    assert result.task_states == {"wait": "success"}, result.logs
    assert result.logs.count("running (syncing)") == 2  # it waited for the running sync, not the old success
    succeeded_at = datetime.fromisoformat(FivetranHook(CONN_ID).get_connector(connector_id)["succeeded_at"])
    assert succeeded_at > after


def test_a_bare_connector_id_is_refused(airflow_env: AirflowEnv, fake_fivetran: FakeFivetran) -> None:
    connector_id = synced_connection(fake_fivetran)

    result = run_sensor(airflow_env, connector_id=connector_id)

    assert result.task_states == {"wait": "failed"}
    assert "completed_after: fivetran_api syncs have no run ids" in result.logs
    assert "{{ data_interval_end }}" in result.logs


def test_a_reference_without_baseline_is_refused(airflow_env: AirflowEnv, fake_fivetran: FakeFivetran) -> None:
    connector_id = synced_connection(fake_fivetran)

    result = run_sensor(airflow_env, sync_ref={"conn_type": "fivetran_api", "connector_id": connector_id})

    assert result.task_states == {"wait": "failed"}
    assert "completed_after: fivetran_api syncs have no run ids" in result.logs


def test_an_api_with_run_ids_needs_the_run_id(airflow_env: AirflowEnv, fake_polytomic: Any) -> None:
    result = run_sensor(airflow_env, "polytomic_default", connector_id="bulk-1")

    assert result.task_states == {"wait": "failed"}
    assert "run_id: polytomic syncs are tracked by run id" in result.logs
