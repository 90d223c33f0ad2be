"""The generic operators and sensor through a real Airflow against the fake Fivetran (FivetranHook underneath)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from airflow_connectors.hooks.fivetran import FivetranHook
from airflow_connectors.operators.connector import CreateConnectorOperator, SyncConnectorOperator
from airflow_connectors.sensors.sync import ConnectorSyncSensor
from tests.fakes.fivetran import FakeFivetran
from tests.fakes.server import rate_limited
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.operators.cdc_support import assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONN_ID = "fivetran_default"
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def new_connection(fake: FakeFivetran, **fields: Any) -> str:
    body = {"group_id": "grp", "service": "postgres", "config": {"schema": f"s_{uuid.uuid4().hex[:6]}"}, **fields}
    return str(FivetranHook(CONN_ID).create_connector(body)["id"])


def run_sync(airflow_env: AirflowEnv, connector_id: str, **kwargs: Any) -> DagRunResult:
    from airflow.sdk import DAG

    with DAG(f"ft_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        SyncConnectorOperator(task_id="sync", conn_id=CONN_ID, connector_id=connector_id, poll_interval=0.2, **kwargs)
    return airflow_env.run_dag(dag)


@pytest.mark.parametrize("deferrable", MODES)
def test_sync_succeeds_from_the_completion_timestamps(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool
) -> None:
    connector_id = new_connection(fake_fivetran)

    result = run_sync(airflow_env, connector_id, deferrable=deferrable)

    assert result.task_states == {"sync": "success"}, result.logs
    ref = result.xcom("sync")
    assert ref["conn_type"] == "fivetran_api" and ref["connector_id"] == connector_id
    assert result.xcom("sync", "run_url") == f"https://fivetran.com/dashboard/connectors/{connector_id}/status"
    assert result.xcom("sync", "connector_url") == f"https://fivetran.com/dashboard/connectors/{connector_id}"
    assert [cid for cid, _ in fake_fivetran.sync_requests] == [connector_id]
    assert_no_secret(result.logs + repr(result.xcoms), fake_fivetran.api_secret)


@pytest.mark.parametrize("deferrable", MODES)
def test_failed_sync_fails_the_task(airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool) -> None:
    connector_id = new_connection(fake_fivetran)
    fake_fivetran.outcomes[connector_id] = "failed"

    result = run_sync(airflow_env, connector_id, deferrable=deferrable)

    assert result.task_states == {"sync": "failed"}
    assert "Fivetran sync failed" in result.logs


@pytest.mark.parametrize("deferrable", MODES)
def test_rescheduled_manual_sync_is_triggered_again_and_awaited(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool
) -> None:
    connector_id = new_connection(fake_fivetran, schedule_type="manual")
    fake_fivetran.outcomes[connector_id] = "rescheduled"

    result = run_sync(airflow_env, connector_id, deferrable=deferrable, timeout=60)

    assert result.task_states == {"sync": "success"}, result.logs
    assert "rescheduled" in result.logs
    assert [cid for cid, _ in fake_fivetran.sync_requests] == [connector_id, connector_id]


@pytest.mark.parametrize("deferrable", MODES)
def test_a_429_storm_is_waited_out(airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool) -> None:
    connector_id = new_connection(fake_fivetran)
    fake_fivetran.inject(rate_limited(0.2), times=4)

    result = run_sync(airflow_env, connector_id, deferrable=deferrable)

    assert result.task_states == {"sync": "success"}, result.logs
    assert "429" in result.logs and "retrying" in result.logs
    assert_no_secret(result.logs, fake_fivetran.api_secret)


@pytest.mark.parametrize("deferrable", MODES)
def test_timeout_fails_and_says_fivetran_cannot_cancel(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool
) -> None:
    connector_id = new_connection(fake_fivetran)
    fake_fivetran.sync_seconds = 120

    result = run_sync(airflow_env, connector_id, deferrable=deferrable, timeout=1)

    assert result.task_states == {"sync": "failed"}
    assert "this API cannot cancel the run" in result.logs


def test_create_by_schema_name_then_sensor_on_the_sync_reference(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran
) -> None:
    from airflow.sdk import DAG

    schema = f"s_{uuid.uuid4().hex[:6]}"
    body = {"group_id": "grp", "service": "postgres", "config": {"schema": schema}}
    with DAG(f"ft_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        create = CreateConnectorOperator(task_id="create", conn_id=CONN_ID, body=body, name=schema, if_exists="reuse")
        start = SyncConnectorOperator(
            task_id="start", conn_id=CONN_ID, connector_id=create.output, wait_for_completion=False
        )
        ConnectorSyncSensor(task_id="wait", conn_id=CONN_ID, sync_ref=start.output, poke_interval=0.2, deferrable=True)

    first = airflow_env.run_dag(dag)
    again = airflow_env.run_dag(dag)

    assert first.task_states == {"create": "success", "start": "success", "wait": "success"}, first.logs
    assert again.task_states == first.task_states, again.logs
    assert first.xcom("create") == again.xcom("create")
    assert len(fake_fivetran.connections) == 1


def test_patch_is_validated_against_fivetran_value_sets_before_sending(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran
) -> None:
    from airflow.sdk import DAG

    from airflow_connectors.operators.connector import PatchConnectorOperator

    connector_id = new_connection(fake_fivetran)
    with DAG(f"ft_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        PatchConnectorOperator(task_id="patch", conn_id=CONN_ID, connector_id=connector_id, patch={"sync_frequency": 7})

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"patch": "failed"}
    assert "sync_frequency" in result.logs
    assert fake_fivetran.requests_to("PATCH", r"/v1/connections/.*") == []


def test_a_templated_table_resync_in_the_explicit_schema_form(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran
) -> None:
    connector_id = new_connection(fake_fivetran)

    result = run_sync(airflow_env, connector_id, resync="{{ {'sales.eu': ['orders']} }}")

    assert result.task_states == {"sync": "success"}, result.logs
    assert fake_fivetran.sync_requests == [
        (connector_id, {"kind": "resync_tables", "tables": {"sales.eu": ["orders"]}})
    ]


def test_the_schema_map_form_is_refused_where_the_api_does_not_take_it(airflow_env: AirflowEnv, fake_polytomic) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import DAG

    sync_id = fake_polytomic.add_bulk_sync()
    with DAG(f"ft_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        SyncConnectorOperator(
            task_id="sync", conn_id="polytomic_default", connector_id=sync_id, resync={"public": ["users"]}
        )

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"sync": "failed"}
    assert "resync: PolytomicHook takes" in result.logs
    assert fake_polytomic.requests_to("POST", r"/api/bulk/syncs/.*/executions") == []


def test_a_connection_made_for_fivetran_async_runs_the_sync(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, airflow_connection: Any
) -> None:
    connector_id = new_connection(fake_fivetran)
    airflow_connection(  # what fivetran-async users have: conn type "Fivetran", key and secret, host left empty
        "fivetran_default",
        conn_type="Fivetran",
        host=fake_fivetran.url,  # only because the API is the fake here
        login=fake_fivetran.api_key,
        password=fake_fivetran.api_secret,
    )

    result = run_sync(airflow_env, connector_id, deferrable=True)

    assert result.task_states == {"sync": "success"}, result.logs
    assert [cid for cid, _ in fake_fivetran.sync_requests] == [connector_id]
