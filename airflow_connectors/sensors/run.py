"""Wait for a run of the shared CDC core by connector id and run id (e.g. from the sync operator's XCom)."""

from __future__ import annotations

from typing import Any

from airflow_connectors.hooks.base import ConnectorHook, SyncRef
from airflow_connectors.hooks.cdc import CdcHook
from airflow_connectors.sensors.sync import ConnectorSyncSensor


class ReplicationRunSensor(ConnectorSyncSensor):
    """Succeeds when the run ``succeeded`` (and meets ``min_rows`` / ``max_lag_bytes``), fails with the run's
    error when it ``failed``, fails when it was ``cancelled``; poke, reschedule or deferrable.

    :param conn_id: a ``cdc_core`` connection.
    :param connector_id: the connector (templated).
    :param run_id: the run (templated), e.g. ``"{{ ti.xcom_pull('sync')['run_id'] }}"``.
    """

    def __init__(self, *, conn_id: str, connector_id: str, run_id: str, **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, connector_id=connector_id, run_id=run_id, **kwargs)

    def _ref(self, hook: ConnectorHook) -> SyncRef:
        if not isinstance(hook, CdcHook):
            raise ValueError(f"conn_id: {self.conn_id} is a {hook.conn_type} connection, expected {CdcHook.conn_type}")
        return super()._ref(hook)
