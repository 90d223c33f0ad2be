"""Wait for a sync of any connector API (poke, reschedule or deferrable), by the reference a sync operator returned.

Contract (the same for every API): succeed when the run succeeded (and meets ``min_rows`` / ``max_lag_bytes``),
fail with the run's own error when it failed, fail when it was cancelled. The sensor does not own the run: it never
cancels it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from airflow_connectors.hooks.base import ConnectorHook, SyncRef, SyncStatus
from airflow_connectors.hooks.registry import get_hook
from airflow_connectors.links import RUN_URL_KEY, ConnectorRunLink
from airflow_connectors.templated import as_moment, load_json_object
from airflow_connectors.triggers.sync import SyncEvent, SyncTrigger
from airflow_connectors.waiting import defer_timeout, wait_deadline


class ConnectorSyncSensor(BaseSensorOperator):
    """Wait for one sync / run to end.

    :param conn_id: Airflow connection of the connector API.
    :param sync_ref: the run reference (a dict or its JSON, e.g. the sync operator's XCom; templated), or
    :param connector_id: the connector (templated) with
    :param run_id: the run (templated), for APIs with run ids (CDC core, Polytomic), or
    :param completed_after: a time (templated, e.g. ``"{{ data_interval_end }}"``), for APIs without run ids
        (Fivetran): the first sync to end after it is awaited. A bare connector id is refused there, since the
        connector's last success may be older than the data the DAG needs (the sync running now is not done).
    :param min_rows: fail unless the run moved at least this many rows.
    :param max_lag_bytes: fail if the run ended further behind the source than this (CDC core).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("conn_id", "sync_ref", "connector_id", "run_id", "completed_after")
    operator_extra_links = (ConnectorRunLink(),)

    def __init__(
        self,
        *,
        conn_id: str,
        sync_ref: dict[str, Any] | str | None = None,
        connector_id: str | None = None,
        run_id: str | None = None,
        completed_after: datetime | str | None = None,
        min_rows: int | None = None,
        max_lag_bytes: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sync_ref is None and connector_id is None:
            raise ValueError("sync_ref or connector_id: one of them is required")
        self.conn_id = conn_id
        self.sync_ref = sync_ref
        self.connector_id = connector_id
        self.run_id = run_id
        self.completed_after = completed_after
        self.min_rows = min_rows
        self.max_lag_bytes = max_lag_bytes
        self.deferrable = deferrable

    def _ref(self, hook: ConnectorHook) -> SyncRef:
        """The awaited sync, refusing a reference that could match a sync ended before it (a stale success)."""
        conn_type = hook.conn_type
        if self.sync_ref is not None:
            ref = SyncRef.from_dict(load_json_object(self.sync_ref, field="sync_ref"))
            if ref.conn_type != conn_type:
                raise ValueError(f"sync_ref: a {ref.conn_type} run, but {self.conn_id} is a {conn_type} connection")
        elif self.completed_after is not None:
            moment = as_moment(self.completed_after, field="completed_after")
            ref = hook.sync_ended_after(str(self.connector_id), moment)
        else:
            ref = SyncRef(conn_type=conn_type, connector_id=str(self.connector_id), run_id=self.run_id)
        if hook.has_run_ids and not ref.run_id:
            raise ValueError(f"run_id: {conn_type} syncs are tracked by run id; pass run_id or sync_ref")
        if not hook.has_run_ids and not ref.baseline:
            raise ValueError(
                f"completed_after: {conn_type} syncs have no run ids, so a bare connector id could match a sync "
                "that ended long ago; pass completed_after (e.g. '{{ data_interval_end }}') or sync_ref (the sync "
                "operator's XCom)"
            )
        return ref

    def poke(self, context: Any) -> bool:
        hook = get_hook(self.conn_id)
        ref = self._ref(hook)
        status = hook.poll_sync(ref)  # None after a transient failure: the next poke tries again
        if status is None or not status.state.terminal:
            return False
        if url := hook.sync_url(ref):
            context["ti"].xcom_push(key=RUN_URL_KEY, value=url)
        self._check(status)
        return True

    def _check(self, status: SyncStatus) -> None:
        if error := status.failure(min_rows=self.min_rows, max_lag_bytes=self.max_lag_bytes):
            raise AirflowFailException(error)

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            super().execute(context)
            return
        if self.poke(context):
            return
        ref = self._ref(get_hook(self.conn_id))
        deadline = wait_deadline(
            timeout=float(self.timeout), execution_timeout=self.execution_timeout, started_at=context["ti"].start_date
        )
        trigger = SyncTrigger(
            conn_id=self.conn_id,
            ref=ref.to_dict(),
            deadline=deadline,
            poll_interval=float(self.poke_interval),
            owns_run=False,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=defer_timeout(deadline))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        ref = self._ref(get_hook(self.conn_id))
        ended = SyncEvent.from_payload(event, ref)
        if ended.status == "timeout":
            raise AirflowSensorTimeout(f"connector {ref.connector_id} run {ref.run_id}: {ended.message}")
        if ended.sync is None:  # polling failed for good (an error event without a final state)
            raise AirflowFailException(ended.message)
        self.log.info("%s", ended.sync.describe())
        self._check(ended.sync)
