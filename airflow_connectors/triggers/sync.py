"""The async poller behind every deferrable operator and sensor of this provider.

Why it looks like this (lessons from other providers):
- it polls the run by its reference and decides completion from the API's own state, never from timestamps
  guessed on the worker (astronomer/airflow-provider-fivetran-async#108, #109);
- it owns an absolute deadline (``timeout`` and the task's ``execution_timeout``, computed before deferring)
  because Airflow does not enforce ``execution_timeout`` while a task is deferred (apache/airflow#61467);
  on that deadline it cancels the external run (when asked) and fires a ``timeout`` event;
- it never blocks the event loop: the hooks' async twins look connections up with ``BaseHook.aget_connection``;
- a cancelled run is an event of its own, never a success (apache/airflow#35597);
- events carry the run id and are validated on resume (:meth:`SyncEvent.from_payload`);
- it polls on the same schedule as the blocking wait (:func:`airflow_connectors.waiting.poll_schedule`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_connectors.hooks.base import ConnectorHook, SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiError
from airflow_connectors.hooks.registry import hook_for
from airflow_connectors.waiting import poll_schedule

EventStatus = Literal["success", "error", "cancelled", "timeout"]
_EVENT_FOR_STATE: dict[SyncState, EventStatus] = {
    SyncState.SUCCESS: "success",
    SyncState.FAILED: "error",
    SyncState.CANCELLED: "cancelled",
}
_EVENT_FOR_STATE_VALUE: dict[Any, str] = {state.value: event for state, event in _EVENT_FOR_STATE.items()}
# How long ``on_kill`` / a deadline may spend cancelling the external run.
CANCEL_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class SyncEvent:
    """The one event :class:`SyncTrigger` fires: built, checked and decoded here.

    ``sync`` is the last status read: the final one for ``success`` / ``error`` / ``cancelled``; for ``timeout``
    the one the deadline found (or none); none for an ``error`` where polling failed for good.
    """

    status: EventStatus
    message: str
    ref: SyncRef
    sync: SyncStatus | None = None

    @classmethod
    def ended(cls, status: SyncStatus) -> SyncEvent:
        return cls(
            _EVENT_FOR_STATE[status.state], status.message or f"run ended {status.raw_state}", status.ref, status
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON for the trigger event; carries the run id the task checks on resume."""
        return {
            "status": self.status,
            "message": self.message,
            "run_id": self.ref.run_id,
            "ref": self.ref.to_dict(),
            "sync": self.sync.to_dict() if self.sync is not None else None,
        }

    @classmethod
    def from_payload(cls, payload: Any, awaited: SyncRef) -> SyncEvent:
        """Check an event the task resumes with (a dict, a known status, a message, the awaited run, a final state
        that matches the status) and decode it."""
        if not isinstance(payload, dict):
            raise AirflowException(f"unexpected trigger event {type(payload).__name__}: expected a dict")
        status = payload.get("status")
        if status not in get_args(EventStatus):
            raise AirflowException(f"unexpected trigger event status {status!r}")
        message = payload.get("message")
        if not isinstance(message, str):
            raise AirflowException("trigger event without a message")
        if payload.get("run_id") != awaited.run_id or (payload.get("ref") or {}).get("connector_id") != (
            awaited.connector_id
        ):
            raise AirflowException(
                f"trigger event for run {payload.get('run_id')!r} does not match the awaited run {awaited.run_id!r}"
            )
        sync = payload.get("sync")
        final = status != "timeout" and not (status == "error" and sync is None)  # deadline, or polling failed
        state = sync.get("state") if isinstance(sync, dict) else None
        if final and _EVENT_FOR_STATE_VALUE.get(state) != status:
            raise AirflowException(f"trigger event {status!r} does not match the run state {state!r}")
        decoded = SyncStatus.from_dict(sync) if isinstance(sync, dict) else None
        return cls(cast(EventStatus, status), message, awaited, decoded)


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
        for pause in poll_schedule(self.deadline, self.poll_interval):
            await asyncio.sleep(pause)
            try:
                status = await hook.apoll_sync(ref) or status
            except ApiError as exc:  # auth, not found...: polling again will not help; say why, without a secret
                yield TriggerEvent(SyncEvent("error", f"polling run {ref.run_id} failed: {exc}", ref).to_payload())
                return
            if status is not None and status.state.terminal:
                yield TriggerEvent(SyncEvent.ended(status).to_payload())
                return
        message = f"deadline passed while the run was {status.raw_state if status is not None else 'unknown'}"
        if self.owns_run:
            message += "; " + await self._cancel(hook)
        yield TriggerEvent(SyncEvent("timeout", message, ref, status).to_payload())

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
