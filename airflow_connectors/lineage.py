"""OpenLineage for syncs: which tables a sync read and wrote, as datasets, for lineage backends (Marquez, ...).

The dataset naming follows OpenLineage's conventions: ``postgres://host:port`` namespaces and
``database.schema.table`` names for the CDC core's source and sink; a SaaS API's tables are named under
``<conn_type>://<connector id>``. The OpenLineage provider is optional: without it nothing here is imported.
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


def sync_datasets(  # type: ignore[no-untyped-def]
    conn_type: str,
    connector: dict[str, Any] | None,
    connector_id: str,
    tables: Sequence[str],
    sink_tables: Mapping[str, Mapping[str, str]] | None = None,
):
    if conn_type == "cdc_core" and connector is not None:
        return cdc_datasets(connector, tables, sink_tables or {})
    return saas_datasets(conn_type, connector_id, tables)


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
