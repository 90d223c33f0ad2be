"""OpenLineage for syncs: which tables a sync read and wrote, as datasets, for lineage backends (Marquez, ...).

The dataset naming follows OpenLineage's conventions: ``postgres://host:port`` namespaces and
``database.schema.table`` names for the CDC core's source and sink; a SaaS API's tables are named under
``<conn_type>://<connector id>``. Which naming a sync gets is the hook's to say
(:meth:`ConnectorHook.lineage_datasets <airflow_connectors.hooks.base.ConnectorHook.lineage_datasets>`). The
OpenLineage provider is optional: without it nothing here is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Dataset = tuple[str, str]  # (namespace, name)


def _postgres_namespace(connection: dict[str, Any]) -> str:
    return f"postgres://{connection['host']}:{connection.get('port') or 5432}"


def cdc_datasets(connector: dict[str, Any], tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
    """Inputs (source tables) and outputs (sink tables) of a CDC core run over ``tables`` ("schema.table")."""
    source = connector["source"]["postgres"]["connection"]
    sink_side = connector["sink"]["postgres"]
    sink, target_schema = sink_side["connection"], sink_side.get("target_schema") or "public"
    inputs = [(_postgres_namespace(source), f"{source['database']}.{table}") for table in tables]
    outputs = [
        (_postgres_namespace(sink), f"{sink['database']}.{target_schema}.{table.split('.', 1)[-1]}") for table in tables
    ]
    return inputs, outputs


def saas_datasets(conn_type: str, connector_id: str, tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
    """What a SaaS sync reports: the tables it wrote, under the connector (their real location is the vendor's)."""
    return [], [(f"{conn_type}://{connector_id}", table) for table in tables]


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
