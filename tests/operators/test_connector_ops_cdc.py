"""CreateConnectorOperator and PatchConnectorOperator through a real Airflow against the real CDC core service."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_connectors.operators.connector import CreateConnectorOperator, PatchConnectorOperator
from tests.cdc.runs.client import RunsClient
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.fixtures.cdc_service import CdcService
from tests.operators.cdc_support import assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def connector_body(runs: RunsClient, name: str) -> dict[str, Any]:
    connection = {key: runs.source[key] for key in ("host", "port", "user", "password", "database")}
    return {
        "id": "",
        "name": name,
        "source": {"postgres": {"connection": connection, "replication_type": {"logical_replication": {}}}},
        "sink": {"postgres": {"connection": dict(connection)}},
    }


def run_task(airflow_env: AirflowEnv, operator: type, **kwargs: Any) -> DagRunResult:
    from airflow.sdk import DAG

    params = kwargs.pop("params", None)
    with DAG(f"ops_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1), params=params) as dag:
        operator(task_id="op", **kwargs)
    return airflow_env.run_dag(dag)


def test_create_then_fail_reuse_or_update_by_name(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, fake_cdc: CdcService
) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    body = connector_body(runs, name)

    created = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=body)
    assert created.task_states == {"op": "success"}, created.logs
    connector_id = created.xcom("op")
    assert runs.connector(connector_id)["connector"]["name"] == name
    assert created.xcom("op", "connector_url") == f"{fake_cdc.url}/console/connectors/{connector_id}"

    again = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=body)
    assert again.task_states == {"op": "failed"}
    assert f"connector {connector_id} already exists (if_exists='fail')" in again.logs

    reused = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=body, if_exists="reuse")
    assert reused.xcom("op") == connector_id

    changed = {**body, "buffer": {"max_rows": 777}}
    updated = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=changed, if_exists="update")
    assert updated.xcom("op") == connector_id
    assert runs.connector(connector_id)["connector"]["buffer"]["max_rows"] == 777
    for result in (created, again, reused, updated):
        assert_no_secret(result.logs + repr(result.xcoms), fake_cdc.token, runs.source["password"])
    assert_no_secret(repr(rendered_fields()), runs.source["password"])  # the UI's "Rendered Template" view


def rendered_fields() -> list[Any]:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(session.execute(select(RenderedTaskInstanceFields.rendered_fields)).scalars())


def test_update_refuses_an_immutable_change_before_sending(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient
) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    body = connector_body(runs, name)
    connector_id = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=body).xcom("op")
    moved = connector_body(runs, name)
    moved["sink"]["postgres"]["connection"]["database"] = "elsewhere"
    moved["buffer"] = {"max_rows": 5}

    result = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=moved, if_exists="update")

    assert result.task_states == {"op": "failed"}
    assert "sink.postgres.connection.database: is immutable after creation" in result.logs
    assert (runs.connector(connector_id)["connector"]["buffer"] or {}).get("max_rows") != 5


def test_body_from_a_json_file_and_from_templates(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, tmp_path: Path
) -> None:
    name = f"file-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "connector.json"
    path.write_text(json.dumps(connector_body(runs, name)))

    from_file = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=str(path))
    assert from_file.task_states == {"op": "success"}, from_file.logs
    assert runs.connector(from_file.xcom("op"))["connector"]["name"] == name

    templated = connector_body(runs, "{{ params.name }}")
    rendered = run_task(
        airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=templated, params={"name": f"{name}-t"}
    )
    assert runs.connector(rendered.xcom("op"))["connector"]["name"] == f"{name}-t"

    missing = run_task(airflow_env, CreateConnectorOperator, conn_id=cdc_conn, body=str(tmp_path / "nope.json"))
    assert missing.task_states == {"op": "failed"} and "body: file" in missing.logs


def test_patch_operator_applies_valid_patches_and_refuses_immutable_ones_locally(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient
) -> None:
    connector_id = runs.create_connector("ok")

    patched = run_task(
        airflow_env,
        PatchConnectorOperator,
        conn_id=cdc_conn,
        connector_id=connector_id,
        patch='{"limits": {"max_rows_per_run": 1000}, "buffer": {"max_rows": {{ params.rows }}}}',
        params={"rows": 4321},
    )
    assert patched.task_states == {"op": "success"}, patched.logs
    connector = runs.connector(connector_id)["connector"]
    assert connector["limits"]["max_rows_per_run"] == 1000 and connector["buffer"]["max_rows"] == 4321

    refused = run_task(
        airflow_env,
        PatchConnectorOperator,
        conn_id=cdc_conn,
        connector_id=connector_id,
        patch={"source": {"postgres": {"connection": {"host": "elsewhere.example"}}}, "buffer": {"max_rows": 1}},
    )
    assert refused.task_states == {"op": "failed"}
    assert "source.postgres.connection.host: is immutable after creation" in refused.logs
    assert runs.connector(connector_id)["connector"]["buffer"]["max_rows"] == 4321

    removed = run_task(
        airflow_env, PatchConnectorOperator, conn_id=cdc_conn, connector_id=connector_id, patch={"sink": None}
    )
    assert removed.task_states == {"op": "failed"} and "sink: is required" in removed.logs
