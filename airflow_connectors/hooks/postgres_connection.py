"""Database credentials of CDC core connectors taken from Airflow connections, at execution time.

A connector body in a DAG may say ``"connection": {"airflow_conn_id": "shop_db"}`` instead of spelling out host,
user and password: the password then lives in Airflow's secrets backend, and never appears in the DAG file, the
rendered template, XCom or the task log. :class:`~airflow_connectors.hooks.cdc.CdcHook` resolves the reference just
before sending the request.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

REFERENCE_KEY = "airflow_conn_id"
# Airflow postgres connection extras -> connector connection fields.
_SSL_MODES = {
    "disable": "Disable",
    "allow": "Allow",
    "prefer": "Prefer",
    "require": "Require",
    "verify-ca": "VerifyCa",
    "verify-full": "VerifyFull",
}
_SSL_FILES = {"sslcert": "ssl_cert", "sslkey": "ssl_key", "sslrootcert": "ssl_root_cert"}


def connection_fields(conn_id: str) -> dict[str, Any]:
    """The connector ``connection`` object for the Airflow (postgres) connection ``conn_id``."""
    conn = BaseHook.get_connection(conn_id)
    missing = [
        name for name, value in (("host", conn.host), ("login", conn.login), ("schema", conn.schema)) if not value
    ]
    if missing:
        raise ValueError(f"Airflow connection {conn_id!r} lacks {', '.join(missing)} (schema holds the database name)")
    if conn.password:
        mask_secret(conn.password)
    fields: dict[str, Any] = {
        "host": conn.host,
        "port": conn.port or 5432,
        "user": conn.login,
        "password": conn.password or "",
        "database": conn.schema,
    }
    extra = conn.extra_dejson
    if "sslmode" in extra:
        mode = str(extra["sslmode"]).lower()
        if mode not in _SSL_MODES:
            raise ValueError(f"Airflow connection {conn_id!r}: sslmode {extra['sslmode']!r} is not a libpq ssl mode")
        fields["ssl_mode"] = _SSL_MODES[mode]
    for extra_key, field in _SSL_FILES.items():
        if extra.get(extra_key):
            fields[field] = extra[extra_key]
    return fields


def resolve_connection_references(body: Any) -> Any:
    """A copy of ``body`` where every ``{"airflow_conn_id": id, ...}`` connection is filled from Airflow.

    Fields given next to the reference (``max_pool_size``, ...) are kept; credentials come from the connection.
    """
    if isinstance(body, dict):
        resolved = {}
        for key, value in body.items():
            if key == "connection" and isinstance(value, dict) and REFERENCE_KEY in value:
                rest = {name: item for name, item in value.items() if name != REFERENCE_KEY}
                resolved[key] = {**copy.deepcopy(rest), **connection_fields(str(value[REFERENCE_KEY]))}
            else:
                resolved[key] = resolve_connection_references(value)
        return resolved
    if isinstance(body, list):
        return [resolve_connection_references(item) for item in body]
    return body
