"""OpenLineage for syncs: which tables a sync read and wrote, as datasets, for lineage backends (Marquez, ...).

The one home of the datasets and facets every sync operator reports (and of which tables a SaaS sync wrote, which
also become Airflow Assets). Dataset naming follows OpenLineage's conventions: ``postgres://host:port`` and
``database.schema.table`` for the CDC core's source and sink and for PostgreSQL sources and warehouses of Fivetran;
``snowflake://<account>``, ``bigquery``, ``redshift://<cluster>.<region>:<port>`` for the warehouses a Fivetran
destination names. What cannot be placed (a SaaS source, an unknown warehouse) is named under
``<conn_type>://<connector or group id>``. The OpenLineage provider is optional: without it nothing is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Dataset = tuple[str, str]  # (namespace, name)


def _postgres_namespace(connection: dict[str, Any]) -> str:
    return f"postgres://{connection['host']}:{connection.get('port') or 5432}"


def cdc_datasets(
    connector: dict[str, Any], tables: Sequence[str], sink_tables: Mapping[str, Mapping[str, str]]
) -> tuple[list[Dataset], list[Dataset]]:
    """Inputs (source tables) and outputs (sink tables) of a CDC core run over ``tables`` ("schema.table").

    ``sink_tables`` is the run's own record of where each table was written (``{"target_schema", "table"}``): the
    service names sink tables once per connector, so they are read from the run, never re-derived here. A table
    the run does not map has no output dataset."""
    source = connector["source"]["postgres"]["connection"]
    sink = connector["sink"]["postgres"]["connection"]
    inputs = [(_postgres_namespace(source), f"{source['database']}.{table}") for table in tables]
    outputs = [
        (_postgres_namespace(sink), f"{sink['database']}.{target['target_schema']}.{target['table']}")
        for table in tables
        if (target := sink_tables.get(table)) is not None
    ]
    return inputs, outputs


def saas_datasets(conn_type: str, connector_id: str, tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
    """What a SaaS sync reports: the tables it wrote, under the connector (their real location is the vendor's)."""
    return [], [(f"{conn_type}://{connector_id}", table) for table in tables]


def _database_namespace(service: str, config: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(namespace, name prefix) of a database or warehouse Fivetran reads or writes, from its service and config."""
    host, port = config.get("host"), config.get("port")
    if "postgres" in service and host:
        return _postgres_namespace(config), [str(config.get("database") or "")]
    if "redshift" in service and host:
        cluster, _, rest = str(host).partition(".")
        region = rest.split(".")[1] if rest.count(".") >= 2 else ""
        return f"redshift://{cluster}.{region}:{port or 5439}", [str(config.get("database") or "")]
    if "snowflake" in service and host:
        account = str(host).removesuffix(".snowflakecomputing.com")
        return f"snowflake://{account}", [str(config.get("database") or "")]
    if service in ("big_query", "bigquery", "managed_big_query") and config.get("project_id"):
        return "bigquery", [str(config["project_id"])]
    return None


def fivetran_datasets(
    connection: dict[str, Any], destination: dict[str, Any] | None, tables: Sequence[Any]
) -> tuple[list[Dataset], list[Dataset]]:
    """A Fivetran sync: the source tables (database sources) in, the destination tables out (``tables`` are
    :class:`airflow_connectors.hooks.fivetran.SyncedTable`)."""
    source = _database_namespace(str(connection.get("service", "")), connection.get("config") or {})
    warehouse = None
    if destination is not None:
        warehouse = _database_namespace(str(destination.get("service", "")), destination.get("config") or {})
    out_namespace, out_prefix = warehouse or (f"fivetran://{connection.get('group_id')}", [])
    inputs = []
    if source is not None:
        in_namespace, in_prefix = source
        inputs = [(in_namespace, ".".join([*in_prefix, t.source_schema, t.source_table])) for t in tables]
    outputs = [(out_namespace, ".".join([*out_prefix, t.schema, t.table])) for t in tables]
    return inputs, outputs


def operator_lineage(inputs: list[Dataset], outputs: list[Dataset]) -> Any:
    """An ``OperatorLineage`` for the OpenLineage provider, or None when it is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset as OLDataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    return OperatorLineage(
        inputs=[OLDataset(namespace=ns, name=name) for ns, name in inputs],
        outputs=[OLDataset(namespace=ns, name=name) for ns, name in outputs],
    )
