"""verify=True in DAGs, against the real CDC core service and engine: the sync operator and the
ReplicationRunSensor succeed on an equal replica and fail, naming table and key, when a sink row was corrupted;
lineage names the sink tables the run reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
import pytest

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.cdc import CdcHook
from airflow_connectors.operators.connector import SyncConnectorOperator
from airflow_connectors.sensors.run import ReplicationRunSensor
from tests.fixtures.airflow_env import AirflowEnv
from tests.fixtures.cdc_service import CdcService
from tests.operators.test_replication_end_to_end import connection_of

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def dag_of(*tasks: Callable[[], Any]) -> Any:
    from airflow.sdk import DAG, chain

    with DAG(f"verify_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        chain(*(make() for make in tasks))
    return dag


def test_verify_in_the_sync_operator_and_the_run_sensor(
    airflow_env: AirflowEnv,
    cdc_service: CdcService,
    airflow_connection: Callable[..., str],
    make_database: Callable[[str], str],
) -> None:
    source_dsn, sink_dsn = make_database("src"), make_database("sink")
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA q1; CREATE SCHEMA q3")
        conn.execute("CREATE TABLE q1.w (id int PRIMARY KEY, v text); CREATE TABLE public.w (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE q3.q1_w (id int PRIMARY KEY)")
        conn.execute("INSERT INTO q1.w SELECT g, 'n' || g FROM generate_series(1, 400) g")
    conn_id = airflow_connection("cdc_verify", conn_type="cdc_core", host=cdc_service.url, password=cdc_service.token)
    hook = CdcHook(conn_id)
    connector_id = hook.create_connector(
        {
            "id": "",
            "source": {"postgres": {"connection": connection_of(source_dsn), "replication_type": {}}},
            "sink": {"postgres": {"connection": connection_of(sink_dsn), "target_schema": "replica"}},
        }
    )["id"]
    common = {"conn_id": conn_id, "connector_id": connector_id}

    def sync(verify: bool, wait: bool = True) -> Callable[[], Any]:
        return lambda: SyncConnectorOperator(
            task_id="sync", verify=verify, wait_for_completion=wait, poll_interval=0.5, timeout=120, **common
        )

    def sensor(deferrable: bool) -> Callable[[], Any]:
        run_id = "{{ ti.xcom_pull(task_ids='sync')['run_id'] }}"
        return lambda: ReplicationRunSensor(
            task_id="wait", run_id=run_id, verify=True, poke_interval=0.5, deferrable=deferrable, **common
        )

    equal = airflow_env.run_dag(dag_of(sync(verify=True), sensor(deferrable=True)))
    assert equal.task_states == {"sync": "success", "wait": "success"}, equal.logs
    run_id = equal.xcom("sync")["run_id"]
    run = hook.get_run(connector_id, run_id)
    assert run["verification"]["status"] == "equal" and run["sink_tables"]["q1.w"]["table"].startswith("q1_w_")

    # Lineage names the sink tables the run reports (q1.w hashed: its schema_table name is q3.q1_w's own name).
    pytest.importorskip("airflow.providers.openlineage")
    operator = SyncConnectorOperator(task_id="lineage", **common)
    tables = ("public.w", "q1.w", "q3.q1_w")
    operator._finished = SyncStatus(
        SyncState.SUCCESS, "succeeded", SyncRef("cdc_core", connector_id, run_id), tables=tables
    )
    outputs = [dataset.name.split(".", 1)[1] for dataset in operator.get_openlineage_facets_on_complete(None).outputs]
    assert outputs == ["replica.public_w", f"replica.{run['sink_tables']['q1.w']['table']}", "replica.q1_w"]


def test_a_corrupted_sink_row_fails_the_operator_and_an_unverified_run_fails_the_sensor(
    airflow_env: AirflowEnv,
    cdc_service: CdcService,
    airflow_connection: Callable[..., str],
    make_database: Callable[[str], str],
) -> None:
    source_dsn, sink_dsn = make_database("src"), make_database("sink")
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO public.orders SELECT g, 'n' || g FROM generate_series(1, 400) g")
    conn_id = airflow_connection("cdc_verify2", conn_type="cdc_core", host=cdc_service.url, password=cdc_service.token)
    hook = CdcHook(conn_id)
    connector_id = hook.create_connector(
        {
            "id": "",
            "source": {"postgres": {"connection": connection_of(source_dsn), "replication_type": {}}},
            "sink": {"postgres": {"connection": connection_of(sink_dsn), "target_schema": "replica"}},
        }
    )["id"]
    common = {"conn_id": conn_id, "connector_id": connector_id}
    first = airflow_env.run_dag(
        dag_of(lambda: SyncConnectorOperator(task_id="sync", poll_interval=0.5, timeout=120, **common))
    )
    assert first.task_states == {"sync": "success"}, first.logs
    with psycopg.connect(sink_dsn, autocommit=True) as conn:
        conn.execute("UPDATE replica.orders SET note = 'corrupted' WHERE id = 7")

    caught = airflow_env.run_dag(
        dag_of(lambda: SyncConnectorOperator(task_id="sync", verify=True, poll_interval=0.5, timeout=120, **common))
    )
    assert caught.task_states == {"sync": "failed"}
    assert "public.orders -> replica.orders" in caught.logs and "id=7 different" in caught.logs

    unverified = airflow_env.run_dag(
        dag_of(
            lambda: SyncConnectorOperator(task_id="sync", wait_for_completion=False, **common),
            lambda: ReplicationRunSensor(
                task_id="wait",
                run_id="{{ ti.xcom_pull(task_ids='sync')['run_id'] }}",
                verify=True,
                poke_interval=0.5,
                **common,
            ),
        )
    )
    assert unverified.task_states == {"sync": "success", "wait": "failed"}, unverified.logs
    assert "did not verify the replica" in unverified.logs
