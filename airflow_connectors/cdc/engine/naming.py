"""Names of the objects the engine creates on the source: one slot and one publication per connector."""

from __future__ import annotations

import hashlib
import re

from airflow_connectors.cdc.connectors.models import STATE_SCHEMA  # bookkeeping schema in the sink, never a source

__all__ = ["FENCE_PREFIX", "PREFIX", "STATE_SCHEMA", "object_name", "publication_name", "slot_name"]

PREFIX = "airflow_connectors_"
FENCE_PREFIX = "airflow_connectors.fence"  # logical decoding message prefix of run fences


def object_name(connector_id: str) -> str:
    """``airflow_connectors_<id>`` made a valid slot name ([a-z0-9_], <= 63), unique via a short hash."""
    readable = re.sub(r"[^a-z0-9_]", "_", connector_id.lower())[:32]
    digest = hashlib.sha256(connector_id.encode()).hexdigest()[:8]
    return f"{PREFIX}{readable}_{digest}"


def slot_name(connector_id: str) -> str:
    return object_name(connector_id)


def publication_name(connector_id: str) -> str:
    return object_name(connector_id)
