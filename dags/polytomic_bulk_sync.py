"""Polytomic: an hourly incremental bulk sync (ELT), with a full historical resync available from the UI.

Uses the ``polytomic_default`` connection (API key, or a deployment key with extra ``key_type``). The sync is
tracked by its execution id; a timed-out task cancels the execution.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from airflow_connectors.operators.connector import SyncConnectorOperator

with DAG(
    dag_id="polytomic_bulk_sync",
    description="Hourly Polytomic bulk sync; trigger with full_resync=true for a historical resync",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,
    params={
        "bulk_sync_id": Param("00000000-0000-0000-0000-000000000000", type="string", minLength=1, title="Bulk sync id"),
        "full_resync": Param(False, type="boolean", title="Full historical resync"),
    },
    tags=["polytomic", "airflow-connectors"],
):
    SyncConnectorOperator(
        task_id="bulk_sync",
        conn_id="polytomic_default",
        connector_id="{{ params.bulk_sync_id }}",
        resync="{{ params.full_resync }}",
        schedule={"frequency": "manual"},  # Airflow is the scheduler
        sync_options={"fetch_mode": "incremental"},
        deferrable=True,
        poll_interval=30,
        timeout=timedelta(hours=2),
    )
