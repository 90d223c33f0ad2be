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


# What a run reports: the sink names the service decided (clashing names apart, a hash where one was taken).
SINK_TABLES = {
    "shop.orders": {"target_schema": "replica", "table": "orders"},
    "q1.w": {"target_schema": "replica", "table": "q1_w_3c5ba1d2"},
    "q3.q1_w": {"target_schema": "replica", "table": "q1_w"},
}


def test_cdc_core_run_reads_source_tables_and_writes_the_sink_tables_the_run_reports() -> None:
    inputs, outputs = cdc_datasets(CONNECTOR, ["shop.orders", "q1.w", "q3.q1_w"], SINK_TABLES)
    assert inputs == [
        ("postgres://shop-db:5432", "shop.shop.orders"),
        ("postgres://shop-db:5432", "shop.q1.w"),
        ("postgres://shop-db:5432", "shop.q3.q1_w"),
    ]
    assert outputs == [
        ("postgres://dwh:6543", "warehouse.replica.orders"),
        ("postgres://dwh:6543", "warehouse.replica.q1_w_3c5ba1d2"),
        ("postgres://dwh:6543", "warehouse.replica.q1_w"),
    ]
    # A table the run does not map is not guessed at.
    assert cdc_datasets(CONNECTOR, ["public.users"], SINK_TABLES)[1] == []


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
    lineage = operator_lineage(*cdc_datasets(CONNECTOR, ["shop.orders"], SINK_TABLES))
    assert [d.name for d in lineage.inputs] == ["shop.shop.orders"]
    assert [d.namespace for d in lineage.outputs] == ["postgres://dwh:6543"]
