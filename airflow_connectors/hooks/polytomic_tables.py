"""Which tables a Polytomic sync wrote, for lineage and Assets (kept apart from the hook: one job, read-only).

A bulk sync (ELT) writes one table per enabled schema (``GET /api/bulk/syncs/{id}/schemas``: ``output_name``), in
the schema its ``destination_configuration`` names; a model sync (reverse ETL) writes its target object
(``GET /api/syncs/{id}``: ``target.object``, or ``target.new_name`` for one it creates).
"""

from __future__ import annotations

from typing import Any


def bulk_sync_tables(sync: dict[str, Any], schemas: list[dict[str, Any]]) -> list[str]:
    prefix = (sync.get("destination_configuration") or {}).get("schema")
    names = [str(s.get("output_name") or s.get("id")) for s in schemas if s.get("enabled")]
    return [f"{prefix}.{name}" if prefix else name for name in names]


def model_sync_tables(sync: dict[str, Any]) -> list[str]:
    target = sync.get("target") or {}
    name = target.get("object") or target.get("new_name")
    return [str(name)] if name else []
