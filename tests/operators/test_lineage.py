"""OpenLineage datasets of a sync: source tables in, sink tables out, named by OpenLineage's conventions."""

from __future__ import annotations

import pytest

from airflow_connectors.hooks.base import SyncRef
from airflow_connectors.hooks.fivetran import SyncedTable
from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.lineage import cdc_datasets, fivetran_datasets, operator_lineage, saas_datasets

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


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        (
            {"service": "snowflake", "config": {"host": "xy12345.eu-west-1.snowflakecomputing.com", "database": "RAW"}},
            ("snowflake://xy12345.eu-west-1", "RAW.crm_sf.contact"),
        ),
        ({"service": "big_query", "config": {"project_id": "acme-dwh"}}, ("bigquery", "acme-dwh.crm_sf.contact")),
        (
            {"service": "redshift", "config": {"host": "dwh.c1x.us-east-1.redshift.amazonaws.com", "database": "dev"}},
            ("redshift://dwh.us-east-1:5439", "dev.crm_sf.contact"),
        ),
        ({"service": "s3_data_lake", "config": {"bucket": "b"}}, ("fivetran://grp", "crm_sf.contact")),
        (None, ("fivetran://grp", "crm_sf.contact")),
    ],
)
def test_fivetran_outputs_are_named_after_the_destination_warehouse(destination, expected) -> None:  # type: ignore[no-untyped-def]
    connection = {"group_id": "grp", "service": "salesforce", "config": {"schema": "crm"}}
    inputs, outputs = fivetran_datasets(connection, destination, [SyncedTable("sf", "Contact", "crm_sf", "contact")])
    assert inputs == [] and outputs == [expected]  # a SaaS source has no OpenLineage naming: no input


def test_operator_lineage_needs_the_openlineage_provider() -> None:
    try:
        import airflow.providers.openlineage  # noqa: F401
    except ImportError:
        assert operator_lineage([("a", "b")], []) is None
        pytest.skip("apache-airflow-providers-openlineage is not installed: the facets are not built")
    lineage = operator_lineage(*cdc_datasets(CONNECTOR, ["shop.orders"]))
    assert [d.name for d in lineage.inputs] == ["shop.shop.orders"]
    assert [d.namespace for d in lineage.outputs] == ["postgres://dwh:6543"]
