"""Lineage and Assets of SaaS syncs, end to end with dag.test(): the Fivetran and Polytomic sync operators report
the tables they wrote (from the API's configuration) as Assets, a downstream DAG scheduled on one gets queued, and
the OpenLineage extractor sees source and destination datasets named by OpenLineage's conventions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk._shared.listeners import hookimpl

from airflow_connectors.assets import table_asset_uri
from airflow_connectors.hooks.fivetran import FivetranHook
from airflow_connectors.operators.connector import SyncConnectorOperator
from tests.fakes.fivetran import FakeFivetran
from tests.fakes.polytomic import FakePolytomic
from tests.fixtures.airflow_env import AirflowEnv, DagRunResult

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def downstream_dag(airflow_env: AirflowEnv, uri: str) -> str:
    """A DAG file in the bundle scheduled on ``uri``, parsed into the metadata DB (as the DAG processor would) and
    unpaused: an asset event on ``uri`` queues a run of it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    dag_id = f"down_{uuid.uuid4().hex[:10]}"
    (airflow_env.dags_folder / f"{dag_id}.py").write_text(
        "from airflow.sdk import DAG, Asset\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n\n"
        f"with DAG({dag_id!r}, schedule=[Asset({uri!r})]):\n"
        "    EmptyOperator(task_id='report')\n"
    )
    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
    with create_session() as session:
        session.get(DagModel, dag_id).is_paused = False
    return dag_id


def asset_event_uris(dag_id: str) -> set[str]:
    """URIs of the asset events the run of ``dag_id`` emitted (fakes reuse connector ids across tests)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_dag_id == dag_id)
        ).scalars()
        return set(rows)


def queued_for(dag_id: str) -> set[str]:
    """URIs of asset events waiting to trigger ``dag_id`` (the scheduler turns them into a run)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri)
            .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == dag_id)
        ).scalars()
        return set(rows)


@dataclass
class Run:
    result: DagRunResult
    lineage: Any  # OperatorLineage, or None without the OpenLineage provider
    assets: set[str]  # URIs of the asset events the run emitted


class LineageListener:
    """Does what the OpenLineage provider's listener does when a task succeeds (in the process that ran it, on
    the operator that ran): asks the extractor manager for the task's lineage. Kept here instead of emitted."""

    def __init__(self) -> None:
        self.lineage: dict[str, Any] = {}

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        from airflow.providers.openlineage.extractors.manager import ExtractorManager
        from airflow.utils.state import TaskInstanceState

        self.lineage[task_instance.dag_id] = ExtractorManager().extract_metadata(
            dagrun=SimpleNamespace(run_id=task_instance.run_id),
            task=task_instance.task,
            task_instance_state=TaskInstanceState.SUCCESS,
            task_instance=task_instance,
        )


def run_and_extract(airflow_env: AirflowEnv, conn_id: str, connector_id: str, **kwargs: Any) -> Run:
    """Run a sync with dag.test(); the lineage is what OpenLineage's listener would have emitted (None when the
    OpenLineage provider is not installed)."""
    from airflow.sdk import DAG
    from airflow.sdk.listener import get_listener_manager

    dag_id = f"saas_{uuid.uuid4().hex[:10]}"
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        SyncConnectorOperator(task_id="sync", conn_id=conn_id, connector_id=connector_id, poll_interval=0.2, **kwargs)
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        return Run(airflow_env.run_dag(dag), None, asset_event_uris(dag_id))
    listener = LineageListener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    try:
        result = airflow_env.run_dag(dag)
    finally:
        manager.pm.unregister(listener)
    return Run(result, listener.lineage.get(dag_id), asset_event_uris(dag_id))


@pytest.mark.parametrize("deferrable", [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")])
def test_fivetran_sync_reports_its_tables_as_assets_and_lineage(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran, deferrable: bool
) -> None:
    body = {
        "group_id": "grp_dwh",
        "service": "postgres",
        "config": {"schema": "shop", "host": "shop-db", "port": 5432, "database": "shopdb", "user": "fivetran"},
    }
    connector_id = FivetranHook("fivetran_default").create_connector(body)["id"]
    fake_fivetran.source_tables[connector_id] = {
        "public": {"orders": True, "users": True, "audit_log": False},
        "archive": {"old_orders": False},
    }
    fake_fivetran.destinations["grp_dwh"] = {
        "service": "postgres_warehouse",
        "config": {"host": "dwh", "port": 6543, "database": "warehouse"},
    }
    orders = table_asset_uri("fivetran_api", connector_id, "shop_public.orders")
    downstream = downstream_dag(airflow_env, orders)

    run = run_and_extract(airflow_env, "fivetran_default", connector_id, deferrable=deferrable)

    assert run.result.task_states == {"sync": "success"}, run.result.logs
    assert run.result.xcom("sync", "sync_result")["tables"] == ["shop_public.orders", "shop_public.users"]
    assert run.assets == {orders, table_asset_uri("fivetran_api", connector_id, "shop_public.users")}
    assert queued_for(downstream) == {orders}
    lineage = run.lineage
    if lineage is None:
        pytest.skip("apache-airflow-providers-openlineage is not installed: assets checked, lineage not built")
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("postgres://shop-db:5432", "shopdb.public.orders"),
        ("postgres://shop-db:5432", "shopdb.public.users"),
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [
        ("postgres://dwh:6543", "warehouse.shop_public.orders"),
        ("postgres://dwh:6543", "warehouse.shop_public.users"),
    ]


def test_a_fivetran_table_resync_reports_only_the_resynced_tables(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran
) -> None:
    body = {"group_id": "grp_x", "service": "salesforce", "config": {"schema": "crm"}}
    connector_id = FivetranHook("fivetran_default").create_connector(body)["id"]
    fake_fivetran.source_tables[connector_id] = {"sf": {"account": True, "contact": True}}

    run = run_and_extract(airflow_env, "fivetran_default", connector_id, resync=["sf.contact"])

    assert run.result.task_states == {"sync": "success"}, run.result.logs
    assert run.assets == {table_asset_uri("fivetran_api", connector_id, "crm_sf.contact")}
    if run.lineage is not None:  # a SaaS source and an unknown destination: named under the group
        assert run.lineage.inputs == []
        assert [(d.namespace, d.name) for d in run.lineage.outputs] == [("fivetran://grp_x", "crm_sf.contact")]


def test_a_fivetran_connector_without_schema_config_succeeds_without_assets(
    airflow_env: AirflowEnv, fake_fivetran: FakeFivetran
) -> None:
    body = {"group_id": "grp_y", "service": "webhooks", "config": {"schema": "hooks"}}
    connector_id = FivetranHook("fivetran_default").create_connector(body)["id"]

    run = run_and_extract(airflow_env, "fivetran_default", connector_id)

    assert run.result.task_states == {"sync": "success"}, run.result.logs
    assert run.assets == set()
    assert run.lineage is None or not run.lineage.outputs


@pytest.fixture
def fake_polytomic_lineage(airflow_connection):  # type: ignore[no-untyped-def]
    from tests.fixtures.fakes import _serve

    fake = FakePolytomic()
    yield from _serve(fake, airflow_connection, "polytomic", fake.api_key, password=fake.api_key)


def test_polytomic_bulk_and_model_syncs_report_their_tables(
    airflow_env: AirflowEnv, fake_polytomic_lineage: FakePolytomic
) -> None:
    fake = fake_polytomic_lineage
    sync_id = fake.add_bulk_sync(destination_configuration={"schema": "raw"})
    fake.schemas[sync_id] = [
        {"id": "public.accounts", "output_name": "accounts", "enabled": True},
        {"id": "public.secrets", "output_name": "secrets", "enabled": False},
    ]
    model_id = next(iter(fake.model_syncs))
    fake.model_syncs[model_id]["target"] = {"connection_id": "crm", "object": "Contact"}
    fake.model_syncs[model_id]["fields"] = [{"source": {"field": "email", "model_id": "m1"}, "target": "Email"}]

    bulk = run_and_extract(airflow_env, "polytomic_default", sync_id)
    model = run_and_extract(airflow_env, "polytomic_default", model_id, sync_options={"sync_kind": "model"})

    assert bulk.result.task_states == {"sync": "success"}, bulk.result.logs
    assert model.result.task_states == {"sync": "success"}, model.result.logs
    assert bulk.assets == {table_asset_uri("polytomic", sync_id, "raw.accounts")}
    assert model.assets == {table_asset_uri("polytomic", model_id, "Contact")}
    if bulk.lineage is not None:
        assert [(d.namespace, d.name) for d in bulk.lineage.outputs] == [(f"polytomic://{sync_id}", "raw.accounts")]
