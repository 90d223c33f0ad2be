"""What Airflow shows about this provider: connection types, hooks, operators, sensors, triggers, links."""

from __future__ import annotations

from typing import Any

PROVIDER_INFO: dict[str, Any] = {
    "package-name": "airflow-connectors",
    "name": "Airflow Connectors",
    "description": "Create, patch, sync and watch data-replication connectors: a PostgreSQL CDC core, Fivetran, "
    "Polytomic and B3OS.",
    "versions": ["0.1.0"],
}
