"""Scheduled CDC sync: keep a PostgreSQL replica of the shop fresh, every 15 minutes.

1. ``ensure_connector`` makes the CDC core connector match the definition below (create, or merge-patch it).
   Database credentials come from the Airflow connections ``cdc_source_db`` / ``cdc_sink_db`` at run time, so no
   password is in this file, in rendered templates or in XCom.
2. ``sync`` starts a catch-up run (everything committed on the source up to now) and returns at once.
3. ``wait_for_run`` waits for that run in the triggerer (deferrable), failing with the run's error.
4. ``check_row_counts`` compares source and sink row counts table by table and fails loudly on drift; on success
   it updates one Asset per sink table, which ``cdc_replica_report`` is scheduled on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, task

from airflow_connectors.assets import table_asset_uri
from airflow_connectors.operators.connector import CreateConnectorOperator, SyncConnectorOperator
from airflow_connectors.sensors.run import ReplicationRunSensor

CDC_CONN_ID = "cdc_core_default"
CONNECTOR_ID = "demo-shop"
SOURCE_TABLES = ("shop.customers", "shop.products", "shop.orders")
TARGET_SCHEMA = "shop_replica"

CONNECTOR: dict[str, Any] = {
    "id": CONNECTOR_ID,
    "name": CONNECTOR_ID,
    "source": {
        "postgres": {
            "connection": {"airflow_conn_id": "cdc_source_db"},
            "replication_type": {"logical_replication": {"retry_window_seconds": 120}},
            "partitions_as_root": True,  # shop.orders is partitioned: replicate it as one table
            "catalog": {"schemas": {"shop": {"tables": {table.split(".")[1]: {} for table in SOURCE_TABLES}}}},
        }
    },
    "sink": {
        "postgres": {
            "connection": {"airflow_conn_id": "cdc_sink_db"},
            "target_schema": TARGET_SCHEMA,
            "migration_strategy": {"added_columns": "apply", "dropped_columns": "keep", "retyped_columns": "fail"},
        }
    },
    "limits": {"max_run_duration_seconds": 3600},
}

# One Asset per replicated table; downstream DAGs schedule on them.
SINK_TABLE_ASSETS = [Asset(table_asset_uri("cdc_core", CONNECTOR_ID, table)) for table in SOURCE_TABLES]


@task(outlets=SINK_TABLE_ASSETS)
def check_row_counts(max_drift: int = 0) -> dict[str, dict[str, int]]:
    """Source and sink row counts per table; fails when they differ by more than ``max_drift`` rows.

    A catch-up run applies everything committed before it started: on a busy source, rows written since then are
    legitimately missing from the sink, which is what ``max_drift`` allows for.
    """
    import psycopg
    from psycopg import sql

    from airflow_connectors.hooks.postgres_connection import connection_fields

    def count_rows(conn_id: str, tables: dict[str, tuple[str, str]]) -> dict[str, int]:
        fields = connection_fields(conn_id)
        with psycopg.connect(
            host=fields["host"],
            port=fields["port"],
            user=fields["user"],
            password=fields["password"],
            dbname=fields["database"],
            connect_timeout=10,
        ) as conn:
            return {
                key: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*name))).fetchone()[0])
                for key, name in tables.items()
            }

    source = count_rows("cdc_source_db", {table: tuple(table.split(".")) for table in SOURCE_TABLES})
    sink = count_rows("cdc_sink_db", {table: (TARGET_SCHEMA, table.split(".")[1]) for table in SOURCE_TABLES})
    report = {table: {"source": source[table], "sink": sink[table]} for table in SOURCE_TABLES}
    drifted = {table: counts for table, counts in report.items() if abs(counts["source"] - counts["sink"]) > max_drift}
    for table, counts in report.items():
        print(f"{table}: source {counts['source']} rows, sink {counts['sink']} rows")
    if drifted:
        raise ValueError(f"source and sink row counts drifted beyond {max_drift} rows: {drifted}")
    return report


with DAG(
    dag_id="cdc_postgres_sync",
    description="Keep the shop replica fresh: ensure the CDC connector, run a catch-up, check the counts",
    schedule=timedelta(minutes=15),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["cdc", "postgres", "airflow-connectors"],
):
    ensure = CreateConnectorOperator(
        task_id="ensure_connector", conn_id=CDC_CONN_ID, body=CONNECTOR, if_exists="update"
    )
    sync = SyncConnectorOperator(
        task_id="sync",
        conn_id=CDC_CONN_ID,
        connector_id=ensure.output,
        sync_options={"mode": "catch_up"},
        wait_for_completion=False,  # the sensor below waits, so the wait can be retried on its own
    )
    wait = ReplicationRunSensor(
        task_id="wait_for_run",
        conn_id=CDC_CONN_ID,
        connector_id=ensure.output,
        run_id="{{ ti.xcom_pull(task_ids='sync')['run_id'] }}",
        deferrable=True,
        poke_interval=2,
        timeout=3600,
    )
    ensure >> sync >> wait >> check_row_counts()
