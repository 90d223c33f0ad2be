"""The whole Airflow path against the real CDC core service and engine: rows actually land in the sink."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from airflow_connectors.operators.connector import CreateConnectorOperator, SyncConnectorOperator
from airflow_connectors.sensors.run import ReplicationRunSensor
from tests.fixtures.airflow_env import AirflowEnv
from tests.fixtures.cdc_service import CdcService
from tests.operators.cdc_support import assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def connection_of(dsn: str) -> dict[str, Any]:
    params = conninfo_to_dict(dsn)
    return {
        "host": params["host"],
        "port": int(params["port"]),
        "user": params["user"],
        "password": params["password"],
        "database": params["dbname"],
    }


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_create_sync_and_wait_replicates_rows(
    airflow_env: AirflowEnv,
    cdc_service: CdcService,
    airflow_connection: Callable[..., str],
    make_database: Callable[[str], str],
    deferrable: bool,
) -> None:
    from airflow.sdk import DAG

    source_dsn, sink_dsn = make_database("src"), make_database("sink")
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.orders SELECT g, 'n' || g FROM generate_series(1, 500) g")
    conn_id = airflow_connection("cdc_real", conn_type="cdc_core", host=cdc_service.url, password=cdc_service.token)
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    body = {
        "id": "",
        "name": name,
        "source": {
            "postgres": {
                "connection": connection_of(source_dsn),
                "replication_type": {"logical_replication": {}},
            }
        },
        "sink": {"postgres": {"connection": connection_of(sink_dsn), "target_schema": "replica"}},
    }
    with DAG(f"e2e_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        ensure = CreateConnectorOperator(task_id="ensure", conn_id=conn_id, body=body, if_exists="update")
        sync = SyncConnectorOperator(
            task_id="sync",
            conn_id=conn_id,
            connector_id=ensure.output,
            deferrable=deferrable,
            poll_interval=0.5,
            timeout=120,
        )
        wait = ReplicationRunSensor(
            task_id="wait",
            conn_id=conn_id,
            connector_id=ensure.output,
            run_id="{{ ti.xcom_pull(task_ids='sync')['run_id'] }}",
            min_rows=500,
            poke_interval=0.5,
            deferrable=deferrable,
        )
        ensure >> sync >> wait

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"ensure": "success", "sync": "success", "wait": "success"}, result.logs
    with psycopg.connect(sink_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM replica.orders").fetchone() == (500,)
    assert result.xcom("sync", "sync_result")["rows"] >= 500
    secrets = (cdc_service.token, body["source"]["postgres"]["connection"]["password"])
    assert_no_secret(result.logs + repr(result.xcoms), *secrets)
