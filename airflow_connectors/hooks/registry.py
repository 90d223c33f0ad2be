"""Pick the connector hook from the Airflow connection's type, so operators and sensors work for every API.

Connections made for other providers work too, so a migration does not start with re-creating connections:

- ``Fivetran`` (fivetran-async's type, any case; default id ``fivetran_default``): the Fivetran hook, same login
  (API key) and password (API secret), extras as ours.
- ``http`` / ``https`` (the generic type Airbyte-style setups use): the hook is told by the extra
  ``connector_type`` (one of our types, e.g. ``{"connector_type": "cdc_core"}``), else by the host when it is a
  vendor's public API host (``api.fivetran.com``, ``app.polytomic.com``, ``api.b3os.org``). Anything else is
  refused with the message saying which extra to add: guessing would send credentials to the wrong API.

Hook modules are imported lazily: a DAG that only talks to Fivetran does not import the CDC hook, and nothing here
runs a request.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_connectors.hooks.base import ConnectorHook

HOOK_CLASSES: dict[str, str] = {
    "cdc_core": "airflow_connectors.hooks.cdc.CdcHook",
    "fivetran_api": "airflow_connectors.hooks.fivetran.FivetranHook",
    "polytomic": "airflow_connectors.hooks.polytomic.PolytomicHook",
    "b3os": "airflow_connectors.hooks.b3os.B3osHook",
}
# Connection types of other providers that mean one of ours (compared lower-cased).
CONN_TYPE_ALIASES: dict[str, str] = {"fivetran": "fivetran_api"}
GENERIC_HTTP_TYPES = frozenset({"http", "https"})
CONNECTOR_TYPE_EXTRA = "connector_type"


def _canonical(conn_type: str) -> str | None:
    if conn_type in HOOK_CLASSES:
        return conn_type
    return CONN_TYPE_ALIASES.get(conn_type.lower())


def hook_class(conn_type: str) -> type[ConnectorHook]:
    """The hook class for ``conn_type`` (or an alias of it); ``ValueError`` naming the type when no connector hook
    handles it."""
    canonical = _canonical(conn_type)
    if canonical is None:
        known = ", ".join(sorted({*HOOK_CLASSES, "Fivetran", *GENERIC_HTTP_TYPES}))
        raise ValueError(f"conn_type {conn_type!r} is not a connector connection type (expected one of: {known})")
    module, _, name = HOOK_CLASSES[canonical].rpartition(".")
    cls = getattr(import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, ConnectorHook)):
        raise TypeError(f"{HOOK_CLASSES[canonical]} is not a ConnectorHook")
    return cls


def _public_hosts() -> dict[str, str]:
    """Public API host name -> conn type, from each hook's ``default_url`` (the CDC core has none)."""
    hosts = {}
    for conn_type in HOOK_CLASSES:
        default_url = getattr(hook_class(conn_type), "default_url", "")
        if default_url:
            hosts[str(urlsplit(default_url).hostname)] = conn_type
    return hosts


def resolve_conn_type(conn_type: str, host: str | None = None, extra: dict[str, Any] | None = None) -> str:
    """Our connection type for an Airflow connection's type (aliases and generic HTTP connections resolved)."""
    if conn_type.lower() not in GENERIC_HTTP_TYPES:
        hook_class(conn_type)  # refuses an unknown type with the list of known ones
        return str(_canonical(conn_type))
    named = (extra or {}).get(CONNECTOR_TYPE_EXTRA)
    if named:
        if _canonical(str(named)) is None:
            raise ValueError(f"extra.{CONNECTOR_TYPE_EXTRA}: {named!r} is not one of {', '.join(sorted(HOOK_CLASSES))}")
        return str(_canonical(str(named)))
    text = (host or "").strip()
    hostname = urlsplit(text if "://" in text else f"//{text}").hostname
    by_host = _public_hosts().get(hostname or "")
    if by_host is None:
        raise ValueError(
            f"conn_type {conn_type!r}: cannot tell which connector API host {text or '(empty)'!r} is; add the extra "
            f'{{"{CONNECTOR_TYPE_EXTRA}": "<one of {", ".join(sorted(HOOK_CLASSES))}>"}} to the connection'
        )
    return by_host


def get_hook(conn_id: str) -> ConnectorHook:
    """The connector hook for the Airflow connection ``conn_id`` (chosen from its type, see the module docstring)."""
    conn = BaseHook.get_connection(conn_id)
    conn_type = resolve_conn_type(str(conn.conn_type), conn.host, conn.extra_dejson)
    return hook_class(conn_type)(conn_id=conn_id)


def hook_for(conn_type: str, conn_id: str) -> ConnectorHook:
    """The hook when the type is already known (a :class:`SyncRef` carries it): no connection lookup here, so
    triggers can build it inside the event loop; the hook's async methods look the connection up themselves."""
    return hook_class(conn_type)(conn_id=conn_id)
