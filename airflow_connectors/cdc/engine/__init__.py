"""The replication engine: a plain library the service's run workers call (and tests call directly)."""

from airflow_connectors.cdc.engine.run import execute_run
from airflow_connectors.cdc.engine.slot import drop_source_objects, source_health

__all__ = ["drop_source_objects", "execute_run", "source_health"]
