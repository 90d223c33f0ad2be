"""What Airflow shows about this provider: connection types (with their UI form), hooks, operators, sensors,
triggers and extra links. Read through the ``apache_airflow_provider`` entry point (``get_provider_info``)."""

from __future__ import annotations

from typing import Any

from airflow_connectors import __version__

INTEGRATIONS = {
    "cdc": "Airflow Connectors CDC core",
    "fivetran": "Fivetran",
    "polytomic": "Polytomic",
    "b3os": "B3OS",
}


def _number(label: str, default: int, description: str) -> dict[str, Any]:
    return {
        "label": label,
        "schema": {"type": ["integer", "null"], "default": default, "minimum": 0},
        "description": description,
    }


# Extras every connection type has: they tune the shared HTTP layer (airflow_connectors.hooks.connection).
HTTP_FIELDS: dict[str, Any] = {
    "connect_timeout": _number("Connect timeout (s)", 10, "Seconds to wait for a TCP/TLS connection."),
    "read_timeout": _number("Read timeout (s)", 60, "Seconds to wait for a response; no request waits forever."),
    "max_retries": _number(
        "Max retries", 5, "Retries on 429 (after Retry-After), 5xx, timeouts and network errors; 0 turns them off."
    ),
    "retry_budget_seconds": _number("Retry budget (s)", 300, "No retry starts after this long since the first try."),
}


def _connection_type(
    conn_type: str, hook: str, name: str, *, fields: dict[str, Any] | None = None, **behaviour: Any
) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": hook,
        "hook-name": name,
        "conn-fields": {**(fields or {}), **HTTP_FIELDS},
        "ui-field-behaviour": {
            "hidden-fields": behaviour.get("hidden", ["schema", "port", "login"]),
            "relabeling": behaviour.get("relabeling", {}),
            "placeholders": behaviour.get("placeholders", {}),
        },
    }


PROVIDER_INFO: dict[str, Any] = {
    "package-name": "airflow-connectors",
    "name": "Airflow Connectors",
    "description": "Create, patch, sync and watch data-replication connectors: a PostgreSQL CDC core, Fivetran, "
    "Polytomic and B3OS.",
    "versions": [__version__],
    "integrations": [
        {"integration-name": name, "external-doc-url": url, "tags": ["service"]}
        for name, url in (
            (INTEGRATIONS["cdc"], "https://github.com/airflow-connectors/airflow-connectors"),
            (INTEGRATIONS["fivetran"], "https://fivetran.com/docs/rest-api"),
            (INTEGRATIONS["polytomic"], "https://apidocs.polytomic.com"),
            (INTEGRATIONS["b3os"], "https://docs.b3os.org"),
        )
    ],
    "hooks": [
        {"integration-name": INTEGRATIONS[key], "python-modules": [f"airflow_connectors.hooks.{module}"]}
        for key, module in (("cdc", "cdc"), ("fivetran", "fivetran"), ("polytomic", "polytomic"), ("b3os", "b3os"))
    ],
    "operators": [
        {"integration-name": name, "python-modules": ["airflow_connectors.operators.connector"]}
        for name in INTEGRATIONS.values()
    ],
    "sensors": [
        {"integration-name": INTEGRATIONS["cdc"], "python-modules": ["airflow_connectors.sensors.run"]},
        *(
            {"integration-name": INTEGRATIONS[key], "python-modules": ["airflow_connectors.sensors.sync"]}
            for key in ("fivetran", "polytomic")
        ),
    ],
    "triggers": [
        {"integration-name": name, "python-modules": ["airflow_connectors.triggers.sync"]}
        for name in INTEGRATIONS.values()
    ],
    "extra-links": ["airflow_connectors.links.ConnectorRunLink", "airflow_connectors.links.ConnectorLink"],
    "connection-types": [
        _connection_type(
            "cdc_core",
            "airflow_connectors.hooks.cdc.CdcHook",
            "CDC core (airflow-connectors)",
            relabeling={"host": "Service URL", "password": "API token"},
            placeholders={"host": "http://cdc.internal:8042", "password": "CDC_API_TOKEN of the service"},
        ),
        _connection_type(
            "fivetran_api",
            "airflow_connectors.hooks.fivetran.FivetranHook",
            "Fivetran (airflow-connectors)",
            hidden=["schema", "port"],
            relabeling={"host": "Base URL (optional)", "login": "API key", "password": "API secret"},
            placeholders={"host": "https://api.fivetran.com"},
        ),
        _connection_type(
            "polytomic",
            "airflow_connectors.hooks.polytomic.PolytomicHook",
            "Polytomic (airflow-connectors)",
            fields={
                "key_type": {
                    "label": "Key type",
                    "schema": {"type": ["string", "null"], "default": "api_key", "enum": ["api_key", "deployment_key"]},
                    "description": "api_key: Bearer API key; deployment_key: on-premises deployment key (Basic).",
                },
                "api_version": {
                    "label": "API version",
                    "schema": {"type": ["string", "null"], "default": "2025-09-18"},
                    "description": "Sent as X-Polytomic-Version.",
                },
            },
            relabeling={"host": "Base URL (optional)", "password": "API key"},
            placeholders={"host": "https://app.polytomic.com"},
        ),
        _connection_type(
            "b3os",
            "airflow_connectors.hooks.b3os.B3osHook",
            "B3OS (airflow-connectors)",
            relabeling={"host": "Base URL (optional)", "password": "API token"},
            placeholders={"host": "https://api.b3os.org"},
        ),
    ],
}
