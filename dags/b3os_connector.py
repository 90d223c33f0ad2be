"""B3OS: keep a workflow platform's database credential in step with Airflow's own connection.

B3OS connectors are stored credentials (no syncs): this DAG creates the connector once and updates its ``data``
when the database password in Airflow (``warehouse_db``) rotates. The password is read at run time inside the
task, so it is never in the DAG file, a rendered template or XCom.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task


@task
def sync_credential(connector_id: str) -> str:
    """Create the connector if it does not exist yet, else update its data (validated against its type first)."""
    from airflow_connectors.hooks.b3os import B3osHook
    from airflow_connectors.hooks.http import ApiNotFound
    from airflow_connectors.hooks.postgres_connection import connection_fields

    fields = connection_fields("warehouse_db")
    data = {"host": fields["host"], "port": fields["port"], "user": fields["user"], "password": fields["password"]}
    hook = B3osHook()
    try:
        hook.get_connector(connector_id)
    except ApiNotFound:
        created = hook.create_connector(
            {"name": "warehouse", "type": "postgres", "description": "managed by Airflow", "data": data}
        )
        return str(created["id"])
    hook.patch_connector(connector_id, {"data": data})
    return connector_id


with DAG(
    dag_id="b3os_connector",
    description="Create or update a B3OS credential from Airflow's warehouse_db connection",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"connector_id": Param("warehouse", type="string", minLength=1, title="B3OS connector id")},
    tags=["b3os", "airflow-connectors"],
):
    sync_credential("{{ params.connector_id }}")
