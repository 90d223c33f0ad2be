"""The Airflow test environment: dag.test() in a throwaway home, with retries, deferral, XCom and log capture."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.fixtures.airflow_env import AirflowEnv

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def test_run_dag_collects_states_xcom_logs_and_runs_triggers_inline(
    airflow_env: AirflowEnv, airflow_connection
) -> None:
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import DAG, BaseHook

    airflow_connection("env_probe", conn_type="http", host="example.invalid", password="s3cr3t-value")

    def flaky(ti, task_state_store) -> str:
        import logging

        conn = BaseHook.get_connection("env_probe")
        logging.getLogger("probe").info("try %s host %s", ti.try_number, conn.host)
        if ti.try_number == 1:
            task_state_store.set("seen", "first")
            raise RuntimeError("first try fails")
        return f"{task_state_store.get('seen')}-{conn.host}"

    with DAG("harness_env_probe", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        step = PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=timedelta(0))
        wait = TimeDeltaSensor(task_id="deferred", delta=timedelta(seconds=0), deferrable=True)
        step >> wait

    result = airflow_env.run_dag(dag)

    assert result.state == "success"
    assert result.task_states == {"flaky": "success", "deferred": "success"}
    assert result.try_numbers["flaky"] == 2
    assert result.xcom("flaky") == "first-example.invalid"
    assert "try 2 host example.invalid" in result.logs
    assert (airflow_env.dags_folder / "harness_env_probe.py").exists()
