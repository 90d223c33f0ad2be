"""Fivetran: keep a connection on a daily schedule, sync it every morning, and offer a table resync from the UI.

Uses the ``fivetran_default`` connection (API key as login, API secret as password). Completion is decided from
the connection's ``succeeded_at`` / ``failed_at`` moving past what they were when the sync started, and a sync
waiting for source quota (``rescheduled``) is waited for, then re-triggered for manual connections.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from airflow_connectors.operators.connector import PatchConnectorOperator, SyncConnectorOperator

with DAG(
    dag_id="fivetran_sync",
    description="Daily Fivetran sync with its schedule managed from Airflow; optional table resync",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "connection_id": Param("warm_sunshine", type="string", minLength=1, title="Fivetran connection id"),
        "resync_tables": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[^.]+\.[^.]+$"},
            title="Tables to resync (schema.table); empty: a normal sync",
        ),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["fivetran", "airflow-connectors"],
):
    settings = PatchConnectorOperator(
        task_id="manual_schedule",
        conn_id="fivetran_default",
        connector_id="{{ params.connection_id }}",
        # Airflow decides when it syncs: Fivetran's own scheduler is switched off (validated before sending).
        patch={"schedule_type": "manual", "sync_frequency": 1440, "daily_sync_time": "06:00"},
    )
    sync = SyncConnectorOperator(
        task_id="sync",
        conn_id="fivetran_default",
        connector_id="{{ params.connection_id }}",
        resync="{{ params.resync_tables or False }}",
        unpause=True,
        deferrable=True,
        poll_interval=60,
        timeout=timedelta(hours=3),
    )
    settings >> sync
