"""The async poller behind every deferrable operator and sensor of this provider.

Why it looks like this (lessons from other providers):
- it polls the run by its reference and decides completion from the API's own state, never from timestamps
  guessed on the worker (astronomer/airflow-provider-fivetran-async#108, #109);
- it owns an absolute deadline (``timeout`` and the task's ``execution_timeout``, computed before deferring)
  because Airflow does not enforce ``execution_timeout`` while a task is deferred (apache/airflow#61467);
  on that deadline it cancels the external run (when asked) and fires a ``timeout`` event;
- it never blocks the event loop: the hooks' async twins look connections up with ``BaseHook.aget_connection``;
- a cancelled run is an event of its own, never a success (apache/airflow#35597);
- events carry the run id and are validated on resume (:func:`parse_event`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_connectors.hooks.base import ConnectorHook, SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiError
from airflow_connectors.hooks.registry import hook_for
from airflow_connectors.waiting import TRANSIENT_ERRORS, progress_line

EVENT_STATUSES = frozenset({"success", "error", "cancelled", "timeout"})
_EVENT_FOR_STATE = {SyncState.SUCCESS: "success", SyncState.FAILED: "error", SyncState.CANCELLED: "cancelled"}
_EVENT_FOR_STATE_VALUE = {state.value: event for state, event in _EVENT_FOR_STATE.items()}
# How long ``on_kill`` / a deadline may spend cancelling the external run.
CANCEL_TIMEOUT_SECONDS = 20.0


def sync_event(status: str, message: str, ref: SyncRef, sync: SyncStatus | None = None) -> dict[str, Any]:
    """A terminal event payload: ``status`` in :data:`EVENT_STATUSES`, a message, the run id and the last status."""
    return {
        "status": status,
        "message": message,
        "run_id": ref.run_id,
        "ref": ref.to_dict(),
        "sync": sync.to_dict() if sync is not None else None,
    }


def parse_event(event: Any, ref: SyncRef) -> dict[str, Any]:
    """Check an event the task resumes with: a dict, a known status, a message, and the run this task waits for."""
    if not isinstance(event, dict):
        raise AirflowException(f"unexpected trigger event {type(event).__name__}: expected a dict")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise AirflowException(f"unexpected trigger event status {status!r}")
    if not isinstance(event.get("message"), str):
        raise AirflowException("trigger event without a message")
    if event.get("run_id") != ref.run_id or (event.get("ref") or {}).get("connector_id") != ref.connector_id:
        raise AirflowException(
            f"trigger event for run {event.get('run_id')!r} does not match the awaited run {ref.run_id!r}"
        )
    sync = event.get("sync")
    if status == "timeout" or (status == "error" and sync is None):  # no final state: deadline, or polling failed
        return event
    state = sync.get("state") if isinstance(sync, dict) else None
    if _EVENT_FOR_STATE_VALUE.get(state) != status:
        raise AirflowException(f"trigger event {status!r} does not match the run state {state!r}")
    return event


class SyncTrigger(BaseTrigger):
    """Poll one sync / run until it ends or the deadline passes.

    :param conn_id: Airflow connection of the connector API (its type is in ``ref``).
    :param ref: the run reference (:meth:`SyncRef.to_dict`).
    :param deadline: absolute deadline, seconds since the epoch (``None``: no deadline).
    :param poll_interval: seconds between polls.
    :param owns_run: the task started this run: cancel it when the deadline passes or the task is killed
        (operators; a sensor does not own the run it watches).
    """

    def __init__(
        self,
        *,
        conn_id: str,
        ref: dict[str, Any],
        deadline: float | None = None,
        poll_interval: float = 30.0,
        owns_run: bool = True,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.ref = SyncRef.from_dict(ref)
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.owns_run = owns_run

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "ref": self.ref.to_dict(),
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "owns_run": self.owns_run,
            },
        )

    def _hook(self) -> ConnectorHook:
        return hook_for(self.ref.conn_type, self.conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        ref = self.ref
        status: SyncStatus | None = None
        while True:
            try:
                status = await hook.aget_sync_status(ref)
            except TRANSIENT_ERRORS as exc:  # the HTTP layer already retried: keep polling until the deadline
                self.log.warning("polling run %s failed, will retry: %s", ref.run_id, exc)
            except ApiError as exc:  # auth, not found...: polling again will not help; say why, without a secret
                yield TriggerEvent(sync_event("error", f"polling run {ref.run_id} failed: {exc}", ref))
                return
            else:
                self.log.info("%s", progress_line(status))
                if status.state.terminal:
                    message = status.message or f"run ended {status.raw_state}"
                    yield TriggerEvent(sync_event(_EVENT_FOR_STATE[status.state], message, ref, status))
                    return
            remaining = None if self.deadline is None else self.deadline - time.time()
            if remaining is not None and remaining <= 0:
                last = status.raw_state if status is not None else "unknown"
                message = f"deadline passed while the run was {last}"
                if self.owns_run:
                    message += "; " + await self._cancel(hook)
                yield TriggerEvent(sync_event("timeout", message, ref, status))
                return
            await asyncio.sleep(self.poll_interval if remaining is None else min(self.poll_interval, remaining))

    async def _cancel(self, hook: ConnectorHook) -> str:
        try:
            cancelled = await asyncio.wait_for(hook.acancel_sync(self.ref), CANCEL_TIMEOUT_SECONDS)
        except Exception as exc:  # the event must still fire; say what happened
            self.log.warning("cancelling run %s failed: %s", self.ref.run_id, exc)
            return f"cancelling the run failed: {exc}"
        return "run cancelled" if cancelled else "this API cannot cancel the run"

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed / cleared): stop the external run it owns."""
        if self.owns_run:
            self.log.info("task killed: %s", await self._cancel(self._hook()))
