"""Wait for a run of the shared CDC core by connector id and run id (e.g. from the sync operator's XCom)."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_connectors.hooks.base import ConnectorHook, SyncRef
from airflow_connectors.hooks.cdc import CdcHook
from airflow_connectors.hooks.registry import get_hook
from airflow_connectors.sensors.sync import ConnectorSyncSensor


class ReplicationRunSensor(ConnectorSyncSensor):
    """Succeeds when the run ``succeeded`` (and meets ``min_rows`` / ``max_lag_bytes``), fails with the run's
    error when it ``failed``, fails when it was ``cancelled``; poke, reschedule or deferrable.

    :param conn_id: a ``cdc_core`` connection.
    :param connector_id: the connector (templated).
    :param run_id: the run (templated), e.g. ``"{{ ti.xcom_pull('sync')['run_id'] }}"``.
    :param verify: also fail unless the run verified the replica equal to its source (start it with
        ``verify=True``, or ``POST /connectors/{id}/verify``); the sensor itself starts nothing.
    """

    def __init__(self, *, conn_id: str, connector_id: str, run_id: str, verify: bool = False, **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, connector_id=connector_id, run_id=run_id, **kwargs)
        self.verify = verify

    def _ref(self, hook: ConnectorHook) -> SyncRef:
        if not isinstance(hook, CdcHook):
            raise ValueError(f"conn_id: {self.conn_id} is a {hook.conn_type} connection, expected {CdcHook.conn_type}")
        return super()._ref(hook)

    def poke(self, context: Any) -> bool:
        done = super().poke(context)
        if done:
            self._check_verified()
        return done

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        super().execute_complete(context, event)
        self._check_verified()

    def _check_verified(self) -> None:
        if not self.verify:
            return
        hook = get_hook(self.conn_id)
        assert isinstance(hook, CdcHook)  # _ref refused any other connection type
        if error := hook.verification_error(self._ref(hook)):
            raise AirflowFailException(error)
