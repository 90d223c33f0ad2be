"""The create and patch operators on B3OS, whose connectors are credentials (no listing, masked data)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from airflow_connectors.operators.connector import CreateConnectorOperator, PatchConnectorOperator
from tests.fakes.b3os import FakeB3os
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.operators.cdc_support import assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CONN_ID = "b3os_default"
PASSWORD = "b3os-db-pass-op-91"
BODY = {
    "name": "warehouse",
    "type": "postgres",
    "data": {"host": "db", "port": 5432, "user": "u", "password": PASSWORD},
}


def run_task(airflow_env: AirflowEnv, operator: type, **kwargs: Any) -> DagRunResult:
    from airflow.sdk import DAG

    with DAG(f"b3_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        operator(task_id="op", conn_id=CONN_ID, **kwargs)
    return airflow_env.run_dag(dag)


def test_create_without_name_lookup_then_patch(airflow_env: AirflowEnv, fake_b3os: FakeB3os) -> None:
    created = run_task(airflow_env, CreateConnectorOperator, body=BODY)
    assert created.task_states == {"op": "success"}, created.logs
    connector_id = created.xcom("op")

    patched = run_task(airflow_env, PatchConnectorOperator, connector_id=connector_id, patch={"name": "wh-2"})
    assert patched.task_states == {"op": "success"}, patched.logs

    masked = run_task(airflow_env, PatchConnectorOperator, connector_id=connector_id, patch={"data": {"port": 6432}})
    assert masked.task_states == {"op": "failed"} and "data.password" in masked.logs

    reuse = run_task(airflow_env, CreateConnectorOperator, body=BODY, if_exists="reuse")
    assert reuse.task_states == {"op": "failed"} and "cannot be found by name" in reuse.logs
    for result in (created, patched, masked, reuse):
        assert_no_secret(result.logs + repr(result.xcoms), PASSWORD, fake_b3os.token)
