"""Resync from the Airflow UI: "Trigger DAG" shows a form (Params) to re-snapshot a connector's tables.

Pick the connector, a full resync or a list of tables, and whether to start even if the connector is paused. The
run's page is linked from the task (extra link "Connector run").
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from airflow_connectors.operators.connector import SyncConnectorOperator

with DAG(
    dag_id="cdc_resync",
    description="Re-snapshot all or some tables of a CDC core connector (trigger from the UI)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,  # resync renders to a bool or a list, not a string
    params={
        "connector_id": Param("demo-shop", type="string", minLength=1, title="Connector id"),
        "scope": Param(
            "tables",
            type="string",
            enum=["full", "tables"],
            title="What to resync",
            values_display={"full": "Every table (full historical resync)", "tables": "Only the tables below"},
        ),
        "tables": Param(
            ["shop.orders"],
            type="array",
            items={"type": "string", "pattern": r"^[^.]+\.[^.]+$"},
            examples=["shop.customers", "shop.products", "shop.orders"],
            title="Tables (schema.table)",
            description="Used when 'What to resync' is 'Only the tables below'.",
        ),
        "force": Param(False, type="boolean", title="Force: cancel a run in progress and start this one"),
        "unpause": Param(False, type="boolean", title="Resume the connector first if it is paused"),
    },
    tags=["cdc", "resync", "airflow-connectors"],
):
    SyncConnectorOperator(
        task_id="resync",
        conn_id="cdc_core_default",
        connector_id="{{ params.connector_id }}",
        resync="{{ True if params.scope == 'full' else params.tables }}",
        force="{{ params.force }}",
        unpause="{{ params.unpause }}",
        deferrable=True,
        poll_interval=5,
        timeout=timedelta(hours=6),
    )
