"""Airflow Assets for the tables a successful sync wrote, so downstream DAGs can be scheduled on fresh data.

The tables are only known once the run ends, so the sync operator declares an :class:`AssetAlias` outlet and adds
one asset event per table through it. URIs are ``connector://<conn_type>/<connector_id>/<table>``: stable, and
derived from what every API reports, so a downstream DAG can name them before the first run::

    schedule=[Asset("connector://cdc_core/orders_cdc/public.orders")]
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import Asset, AssetAlias

from airflow_connectors.hooks.base import SyncStatus


def table_asset_uri(conn_type: str, connector_id: str, table: str) -> str:
    return f"connector://{conn_type}/{quote(connector_id, safe='')}/{quote(table, safe='.')}"


def emit_table_assets(context: Any, alias: str, status: SyncStatus) -> list[str]:
    """Add one asset event per table of ``status`` through the outlet alias ``alias``; returns the URIs."""
    ref = status.ref
    events = context["outlet_events"][AssetAlias(alias)]
    uris = []
    for table in status.tables:
        uri = table_asset_uri(ref.conn_type, ref.connector_id, table)
        events.add(Asset(uri=uri), extra={"run_id": ref.run_id, "connector_id": ref.connector_id})
        uris.append(uri)
    return uris
