"""Downstream of the CDC sync: runs whenever ``cdc_postgres_sync`` has refreshed the replicated orders table."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_connectors.assets import table_asset_uri

ORDERS_REPLICA = Asset(table_asset_uri("cdc_core", "demo-shop", "shop.orders"))


@task
def summarise_fresh_orders(**context: object) -> int:
    """A stand-in for real downstream work (dbt, a report): says which asset events triggered it."""
    events = context.get("triggering_asset_events") or {}
    count = sum(len(list(batch)) for batch in events.values()) if hasattr(events, "values") else 0
    print(f"the orders replica was refreshed ({count} asset event(s)); building the report")
    return count


with DAG(
    dag_id="cdc_replica_report",
    description="Scheduled on the Asset the CDC sync emits for the replicated orders table",
    schedule=[ORDERS_REPLICA],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cdc", "assets", "airflow-connectors"],
):
    summarise_fresh_orders()
