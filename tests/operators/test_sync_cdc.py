"""SyncConnectorOperator through a real Airflow (dag.test) against the real CDC core service (fake engine)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from airflow_connectors.operators.connector import SyncConnectorOperator
from tests.cdc.runs.client import RunsClient
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult
from tests.fixtures.cdc_service import CdcService
from tests.operators.cdc_support import (
    assert_no_secret,
    cancel_first_run_when_started,
    run_ids,
    wait_run_state,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def run_sync(
    airflow_env: AirflowEnv,
    conn_id: str,
    connector_id: str,
    operator: type[SyncConnectorOperator] = SyncConnectorOperator,
    **kwargs: Any,
) -> DagRunResult:
    from airflow.sdk import DAG

    dag_id = f"sync_{uuid.uuid4().hex[:10]}"
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        operator(task_id="sync", conn_id=conn_id, connector_id=connector_id, poll_interval=0.2, **kwargs)
    return airflow_env.run_dag(dag)


def asset_event_uris(connector_id: str) -> set[str]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(AssetModel.uri).join(AssetEvent, AssetEvent.asset_id == AssetModel.id)).scalars()
        return {uri for uri in rows if f"/{connector_id}/" in uri}


@pytest.mark.parametrize("deferrable", MODES)
def test_success_returns_the_run_reference_links_result_and_assets(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, fake_cdc: CdcService, deferrable: bool
) -> None:
    connector_id = runs.create_connector("ok")

    result = run_sync(airflow_env, cdc_conn, connector_id, deferrable=deferrable)

    assert result.task_states == {"sync": "success"}, result.logs
    ref = result.xcom("sync")
    assert ref["conn_type"] == "cdc_core" and ref["connector_id"] == connector_id
    assert runs.run(connector_id, ref["run_id"])["state"] == "succeeded"
    assert result.xcom("sync", "run_url") == f"{fake_cdc.url}/console/connectors/{connector_id}/runs/{ref['run_id']}"
    assert result.xcom("sync", "_link_ConnectorRunLink") == result.xcom("sync", "run_url")
    summary = result.xcom("sync", "sync_result")
    assert summary["state"] == "success" and summary["rows"] == 10 and summary["tables"] == ["public.t"]
    assert f"connector {connector_id} run {ref['run_id']}: success (succeeded), rows 10" in result.logs
    assert asset_event_uris(connector_id) == {f"connector://cdc_core/{connector_id}/public.t"}
    assert_no_secret(result.logs + repr(result.xcoms), fake_cdc.token, runs.source["password"])


@pytest.mark.parametrize("deferrable", MODES)
def test_failed_run_fails_the_task_with_the_run_error(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, deferrable: bool
) -> None:
    connector_id = runs.create_connector("slot-lost")

    result = run_sync(airflow_env, cdc_conn, connector_id, deferrable=deferrable)

    assert result.task_states == {"sync": "failed"}
    assert "failed: replication slot is lost" in result.logs


def test_engine_error_quoting_a_password_does_not_leak(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, fake_cdc: CdcService
) -> None:
    connector_id = runs.create_connector("crash")

    result = run_sync(airflow_env, cdc_conn, connector_id)

    assert result.task_states == {"sync": "failed"}
    assert_no_secret(result.logs + repr(result.xcoms), fake_cdc.token, runs.source["password"])


@pytest.mark.parametrize("deferrable", MODES)
def test_run_cancelled_by_a_user_fails_the_task(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, deferrable: bool
) -> None:
    connector_id = runs.create_connector("block")
    canceller = threading.Thread(target=cancel_first_run_when_started, args=(runs, connector_id))
    canceller.start()

    result = run_sync(airflow_env, cdc_conn, connector_id, deferrable=deferrable, timeout=60)

    canceller.join(30)
    assert result.task_states == {"sync": "failed"}
    assert "was cancelled" in result.logs


@pytest.mark.parametrize("deferrable", MODES)
def test_timeout_cancels_the_external_run(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, deferrable: bool
) -> None:
    connector_id = runs.create_connector("block")

    result = run_sync(airflow_env, cdc_conn, connector_id, deferrable=deferrable, timeout=2)

    assert result.task_states == {"sync": "failed"}
    assert "run cancelled" in result.logs
    [run_id] = run_ids(runs, connector_id)
    wait_run_state(runs, connector_id, run_id, "cancelled")


@pytest.mark.parametrize("deferrable", MODES)
def test_execution_timeout_cancels_the_external_run_also_while_deferred(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, deferrable: bool
) -> None:
    connector_id = runs.create_connector("block")

    result = run_sync(
        airflow_env, cdc_conn, connector_id, deferrable=deferrable, execution_timeout=timedelta(seconds=3)
    )

    assert result.task_states == {"sync": "failed"}
    [run_id] = run_ids(runs, connector_id)
    wait_run_state(runs, connector_id, run_id, "cancelled")


class WorkerLostAfterStart(SyncConnectorOperator):
    """The first try dies right after starting the run, as a worker killed at that moment would."""

    def _resume_or_start(self, hook, context):  # type: ignore[no-untyped-def]
        started = super()._resume_or_start(hook, context)
        if context["ti"].try_number == 1:
            raise RuntimeError("worker lost")
        return started


@pytest.mark.parametrize("deferrable", MODES)
def test_retry_reattaches_to_the_run_of_the_earlier_try(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient, deferrable: bool
) -> None:
    connector_id = runs.create_connector("block")

    result = run_sync(
        airflow_env,
        cdc_conn,
        connector_id,
        operator=WorkerLostAfterStart,
        deferrable=deferrable,
        timeout=3,
        retries=1,
        retry_delay=timedelta(0),
    )

    assert result.try_numbers["sync"] == 2
    [run_id] = run_ids(runs, connector_id)  # no second run
    assert f"re-attaching to run {run_id} started by an earlier try" in result.logs
    assert result.task_states == {"sync": "failed"}  # the blocking run hit the deadline of try 2 ...
    wait_run_state(runs, connector_id, run_id, "cancelled")  # ... which cancelled it


def test_active_run_of_someone_else_is_awaited_not_duplicated_nor_cancelled(
    airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient
) -> None:
    connector_id = runs.create_connector("block")
    foreign = runs.start(connector_id)

    result = run_sync(airflow_env, cdc_conn, connector_id, timeout=2)

    assert result.task_states == {"sync": "failed"}
    assert f"already has an active run {foreign}" in result.logs and "run left running" in result.logs
    assert run_ids(runs, connector_id) == [foreign]
    assert runs.run(connector_id, foreign)["state"] != "cancelled"
    assert runs.cancel(connector_id, foreign).status_code == 202


def test_schedule_unpause_and_no_wait(airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("ok")
    assert (
        runs.http.post(
            f"{runs.api}/connectors/{connector_id}/commands", json={"command": "pause"}, timeout=30
        ).status_code
        == 200
    )

    result = run_sync(
        airflow_env,
        cdc_conn,
        connector_id,
        schedule={"interval_seconds": 3600},
        unpause=True,
        wait_for_completion=False,
    )

    assert result.task_states == {"sync": "success"}, result.logs
    connector = runs.connector(connector_id)
    assert connector["connector"]["schedule"]["interval_seconds"] == 3600
    assert connector["status"]["paused"] is False
    assert result.xcom("sync")["run_id"] in run_ids(runs, connector_id)


def test_options_rendered_from_params(airflow_env: AirflowEnv, cdc_conn: str, runs: RunsClient) -> None:
    """As in the UI-triggered resync DAG: flags and the table list arrive as rendered strings."""
    from airflow.sdk import DAG, Param

    connector_id = runs.create_connector("ok")
    params = {"scope": Param("tables"), "tables": Param(["public.t"]), "force": Param(False), "unpause": Param(True)}
    with DAG(f"sync_{uuid.uuid4().hex[:10]}", schedule=None, start_date=datetime(2024, 1, 1), params=params) as dag:
        SyncConnectorOperator(
            task_id="sync",
            conn_id=cdc_conn,
            connector_id=connector_id,
            resync="{{ True if params.scope == 'full' else params.tables }}",
            force="{{ params.force }}",
            unpause="{{ params.unpause }}",
            poll_interval=0.2,
        )

    result = airflow_env.run_dag(dag)

    assert result.task_states == {"sync": "success"}, result.logs
    assert runs.run(connector_id, result.xcom("sync")["run_id"])["resync"] == ["public.t"]
