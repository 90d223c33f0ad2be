"""Pick the connector hook from the Airflow connection's type, so operators and sensors work for every API.

Hook modules are imported lazily: a DAG that only talks to Fivetran does not import the CDC hook, and nothing here
runs a request.
"""

from __future__ import annotations

from importlib import import_module

from airflow.sdk import BaseHook

from airflow_connectors.hooks.base import ConnectorHook

HOOK_CLASSES: dict[str, str] = {
    "cdc_core": "airflow_connectors.hooks.cdc.CdcHook",
    "fivetran_api": "airflow_connectors.hooks.fivetran.FivetranHook",
    "polytomic": "airflow_connectors.hooks.polytomic.PolytomicHook",
    "b3os": "airflow_connectors.hooks.b3os.B3osHook",
}


def hook_class(conn_type: str) -> type[ConnectorHook]:
    """The hook class for ``conn_type``; ``ValueError`` naming the type when no connector hook handles it."""
    path = HOOK_CLASSES.get(conn_type)
    if path is None:
        known = ", ".join(sorted(HOOK_CLASSES))
        raise ValueError(f"conn_type {conn_type!r} is not a connector connection type (expected one of: {known})")
    module, _, name = path.rpartition(".")
    cls = getattr(import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, ConnectorHook)):
        raise TypeError(f"{path} is not a ConnectorHook")
    return cls


def get_hook(conn_id: str) -> ConnectorHook:
    """The connector hook for the Airflow connection ``conn_id`` (chosen from its ``conn_type``)."""
    conn = BaseHook.get_connection(conn_id)
    return hook_class(str(conn.conn_type))(conn_id=conn_id)


def hook_for(conn_type: str, conn_id: str) -> ConnectorHook:
    """The hook when the type is already known (a :class:`SyncRef` carries it): no connection lookup here, so
    triggers can build it inside the event loop; the hook's async methods look the connection up themselves."""
    return hook_class(conn_type)(conn_id=conn_id)
