"""The Airflow test environment: dag.test() in a throwaway home, with retries, deferral, XCom and log capture."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.fixtures.airflow_env import AirflowEnv

pytestmark = [pytest.mark.airflow]
pytest_plugins = ["pytester"]


@pytest.mark.slow
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


def test_each_pytest_xdist_worker_has_its_own_airflow_home(pytester, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Workers inherit the controller's environment; sharing its home would mean two processes on one SQLite
    metadata database."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the inner session needs only these two plugins
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(root)!r})\npytest_plugins = ['tests.fixtures.airflow_env']\n"
    )
    pytester.makepyfile(
        f"""
        import os

        def test_home():
            with open({str(pytester.path / "homes.txt")!r}, "a") as out:
                out.write(os.environ["AIRFLOW_HOME"] + "\\n")
            assert os.path.isdir(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
            assert os.environ["AIRFLOW__CORE__DAGS_FOLDER"].startswith(os.environ["AIRFLOW_HOME"])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist.plugin", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    homes = (pytester.path / "homes.txt").read_text().split()
    assert len(homes) == 2 and len(set(homes)) == 2, homes
    assert not any(Path(home).exists() for home in homes)  # each worker removed its own
