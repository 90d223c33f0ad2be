"""Every example DAG imports cleanly, with no network access, and has the shape its docstring promises."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "cdc_postgres_sync",
    "cdc_replica_report",
    "cdc_resync",
    "fivetran_sync",
    "polytomic_bulk_sync",
    "b3os_connector",
}


@pytest.fixture(scope="module")
def dagbag(airflow_env):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a DAG file opened a network connection at parse time")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", no_network)
        patch.setattr(socket, "create_connection", no_network)
        return DagBag(dag_folder=str(DAGS_FOLDER))


def test_all_dags_import_without_errors_or_network(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert EXPECTED <= set(dagbag.dag_ids)


def test_scheduled_cdc_sync(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.get_dag("cdc_postgres_sync")
    assert dag.catchup is False and dag.max_active_runs == 1
    assert [task.task_id for task in dag.topological_sort()] == [
        "ensure_connector",
        "sync",
        "wait_for_run",
        "check_row_counts",
    ]
    check = dag.get_task("check_row_counts")
    assert {asset.uri for asset in check.outlets} == {
        "connector://cdc_core/demo-shop/shop.customers",
        "connector://cdc_core/demo-shop/shop.products",
        "connector://cdc_core/demo-shop/shop.orders",
    }
    assert "password" not in str(dag.get_task("ensure_connector").body)


def test_downstream_dag_is_scheduled_on_the_cdc_asset(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.get_dag("cdc_replica_report")
    uris = {asset.uri for asset in dag.timetable.asset_condition.objects}
    assert "connector://cdc_core/demo-shop/shop.orders" in uris


def test_resync_form_params_are_validated(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.get_dag("cdc_resync")
    assert type(dag.timetable).__name__ == "NullTimetable"  # triggered from the UI only
    assert set(dag.params) >= {"connector_id", "scope", "tables", "force", "unpause"}
    dag.params.validate()  # the defaults are a valid form
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    for key, value in (("tables", ["no_schema_here"]), ("scope", "some"), ("connector_id", "")):
        form = ParamsDict(dag.params)
        with pytest.raises(ParamValidationError, match=f"param {key}"):
            form[key] = value
