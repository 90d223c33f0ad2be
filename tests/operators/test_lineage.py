"""OpenLineage datasets of a sync: source tables in, sink tables out, named by OpenLineage's conventions."""

from __future__ import annotations

import pytest

from airflow_connectors.hooks.base import SyncRef
from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.lineage import cdc_datasets, operator_lineage, saas_datasets

CONNECTOR = {
    "source": {"postgres": {"connection": {"host": "shop-db", "port": 5432, "database": "shop"}}},
    "sink": {
        "postgres": {"connection": {"host": "dwh", "port": 6543, "database": "warehouse"}, "target_schema": "replica"}
    },
}


def test_cdc_core_run_reads_source_tables_and_writes_sink_tables() -> None:
    inputs, outputs = cdc_datasets(CONNECTOR, ["shop.orders", "public.users"])
    assert inputs == [("postgres://shop-db:5432", "shop.shop.orders"), ("postgres://shop-db:5432", "shop.public.users")]
    assert outputs == [
        ("postgres://dwh:6543", "warehouse.replica.orders"),
        ("postgres://dwh:6543", "warehouse.replica.users"),
    ]


def test_saas_sync_reports_the_tables_it_wrote() -> None:
    assert saas_datasets("fivetran_api", "conn_1", ["public.deals"]) == (
        [],
        [("fivetran_api://conn_1", "public.deals")],
    )
    hook = PolytomicHook("unused")  # a SaaS hook names the tables without a request
    assert hook.lineage_datasets(SyncRef("polytomic", "s1"), ["a.b"]) == ([], [("polytomic://s1", "a.b")])


def test_operator_lineage_needs_the_openlineage_provider() -> None:
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        assert operator_lineage([("a", "b")], []) is None
        pytest.skip("apache-airflow-providers-openlineage is not installed: the facets are not built")
    lineage = operator_lineage(*cdc_datasets(CONNECTOR, ["shop.orders"]))
    assert [d.name for d in lineage.inputs] == ["shop.shop.orders"]
    assert [d.namespace for d in lineage.outputs] == ["postgres://dwh:6543"]


def test_sync_operator_reports_lineage_on_completion(fake_fivetran) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
    from airflow_connectors.operators.connector import SyncConnectorOperator

    operator = SyncConnectorOperator(task_id="sync", conn_id="fivetran_default", connector_id="conn_1")
    assert operator.get_openlineage_facets_on_complete(None) is None  # nothing finished yet
    operator._finished = SyncStatus(
        SyncState.SUCCESS, "succeeded", SyncRef("fivetran_api", "conn_1"), tables=("public.deals",)
    )
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("fivetran_api://conn_1", "public.deals")]
