"""Hook of the Polytomic API (connection type ``polytomic``): connections, bulk syncs (ELT), model syncs.

Connection: the API key in ``password`` (Bearer), or with extra ``key_type = deployment_key`` an on-premises
deployment key (HTTP Basic, key as user); extra ``api_version`` is sent as ``X-Polytomic-Version``.

How the common interface maps: the connector methods act on Polytomic *connections* (their id is a
``connection_id``); schedule, pause and the sync methods act on a *bulk sync* (``sync_id``; ``sync_kind="model"``
targets a model sync instead), which the operators pass as their ``connector_id``. Polytomic executions have ids, so
a sync is tracked by its execution id, never by timestamps.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiConflict, ApiNotFound, ApiValidationError, HttpApiHook
from airflow_connectors.hooks.polytomic_tables import bulk_sync_tables, model_sync_tables
from airflow_connectors.merge_patch import merge_patch

DEFAULT_VERSION = "2025-09-18"
# How long ``trigger_sync(force=True)`` waits for the execution it cancelled to end (cancelling is asynchronous).
FETCH_MODES = frozenset({"none", "incremental", "full"})
RESYNC_MODES = frozenset({"refetch", "resync", "rebuild"})
FREQUENCIES = frozenset(
    {"manual", "continuous", "hourly", "daily", "weekly", "custom", "builder", "runafter", "multi", "dbtcloud"}
)
SCHEDULE_FIELDS = ("frequency", "minute", "hour", "day_of_week", "day_of_month", "month")
# What a bulk sync update (a full replacement: an omitted field resets to its default) takes, as the SDK's
# ``bulk_sync.update`` sends it; the read-only fields of the sync as read (id, created_at, ...) are not sent back.
BULK_UPDATE_FIELDS = (
    "name",
    "source_connection_id",
    "destination_connection_id",
    "destination_configuration",
    "source_configuration",
    "default_schedule",
    "additional_schedules",
    "active",
    "automatically_add_new_fields",
    "automatically_add_new_objects",
    "concurrency_limit",
    "data_cutoff_timestamp",
    "disable_record_timestamps",
    "mode",
    "normalize_names",
    "organization_id",
    "policies",
    "resync_concurrency_limit",
)
ADDITIONAL_SCHEDULE_FIELDS = ("id", *SCHEDULE_FIELDS, "resync_mode", "schemas", "selective_mode")
STATES = {
    **dict.fromkeys(
        ("created", "scheduled", "queued", "waiting", "running", "exporting", "processing", "canceling"),
        SyncState.RUNNING,
    ),
    "completed": SyncState.SUCCESS,
    "failed": SyncState.FAILED,
    "errors": SyncState.FAILED,
    "interrupted": SyncState.FAILED,
    "canceled": SyncState.CANCELLED,
}
UPDATE_FIELDS = frozenset(
    {"name", "configuration", "healthcheck_interval", "organization_id", "policies", "reconnect", "type", "validate"}
)


def execution_status(ref: SyncRef, execution: dict[str, Any]) -> SyncStatus:
    """A bulk execution (``record_count``, ``error_count``, ``status_message``) or a model sync execution
    (``counts``, ``errors``), normalised."""
    raw = str(execution.get("status", "unknown"))
    state = STATES.get(raw, SyncState.RUNNING)
    counts = execution.get("counts") or {}
    rows = execution.get("record_count", counts.get("total"))
    errors = execution.get("error_count", counts.get("error"))
    message = None
    if state is SyncState.FAILED:
        reason = execution.get("status_message") or "; ".join(execution.get("errors") or [])
        message = f"Polytomic execution {ref.run_id} ended {raw} ({'?' if errors is None else errors} errors)"
        message += f": {reason}" if reason else ""
    elif state is SyncState.CANCELLED:
        message = f"Polytomic execution {ref.run_id} was cancelled"
    details = {
        "started_at": execution.get("started_at"),
        "completed_at": execution.get("completed_at"),
        "is_resync": execution.get("is_resync"),
        "error_count": errors,
        "warning_count": execution.get("warning_count", counts.get("warnings")),
    }
    return SyncStatus(state, raw, ref, message, rows=rows, details=details)


def schedule_request(schedule: Any) -> dict[str, str]:
    """A bulk sync's ``default_schedule`` from the operator's ``schedule``; the API takes its values as strings."""
    if not isinstance(schedule, dict):
        raise ValueError('schedule: expected an object such as {"frequency": "daily", "hour": "3", "minute": "0"}')
    for key in schedule:
        if key not in SCHEDULE_FIELDS:
            raise ValueError(f"schedule.{key}: not a schedule field ({', '.join(SCHEDULE_FIELDS)})")
    frequency = schedule.get("frequency")
    if frequency not in FREQUENCIES:
        raise ValueError(f"schedule.frequency: {frequency!r} is not one of {', '.join(sorted(FREQUENCIES))}")
    request = {"frequency": str(frequency)}
    for key in SCHEDULE_FIELDS[1:]:
        value = schedule.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"schedule.{key}: expected a string or an integer, got {value!r}")
        request[key] = str(value)
    return request


def bulk_update_body(sync: dict[str, Any], default_schedule: dict[str, str]) -> dict[str, Any]:
    """The full-replacement update of ``sync`` (as read) with a new default schedule and everything else kept."""
    body = {key: sync[key] for key in BULK_UPDATE_FIELDS if sync.get(key) is not None}
    body["additional_schedules"] = [
        {key: item[key] for key in ADDITIONAL_SCHEDULE_FIELDS if item.get(key) is not None}
        for item in sync.get("additional_schedules") or []
    ]
    current_id = (sync.get("default_schedule") or {}).get("id")
    body["default_schedule"] = {**({"id": current_id} if current_id else {}), **default_schedule}
    return body


class PolytomicHook(HttpApiHook):
    """Polytomic connections, bulk syncs and model syncs (see the module docstring)."""

    conn_type = "polytomic"
    default_url = "https://app.polytomic.com"
    default_conn_name = "polytomic_default"
    hook_name = "Polytomic (airflow-connectors)"
    connector_id_key: ClassVar[str] = "id"

    def auth_headers(self, conn: Any) -> dict[str, str]:
        if not conn.password:
            raise ValueError(f"connection {self.conn_id!r}: the Polytomic key (password field) is empty")
        key_type = (conn.extra_dejson or {}).get("key_type", "api_key")
        if key_type == "deployment_key":
            return self.basic_auth(conn.password, "")
        if key_type != "api_key":
            raise ValueError(f"extra.key_type: expected api_key or deployment_key, got {key_type!r}")
        return {"Authorization": f"Bearer {conn.password}"}

    def extra_headers(self, conn: Any) -> dict[str, str]:
        return {"X-Polytomic-Version": str((conn.extra_dejson or {}).get("api_version") or DEFAULT_VERSION)}

    def unwrap(self, payload: Any) -> Any:
        return payload.get("data", payload) if isinstance(payload, dict) else payload

    # -- connections (the interface's "connector" methods) -------------------------------------------------------
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a connection; the ``Idempotency-Key`` makes a retried create return the same connection."""
        for field in ("name", "type", "configuration"):
            if not body.get(field):
                raise ValueError(f"{field}: required to create a Polytomic connection")
        key = idempotency_key or str(uuid.uuid4())
        return dict(
            self._call("POST", "/api/connections", json=body, headers={"Idempotency-Key": key}, idempotent=True)
        )

    def get_connector(self, connection_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/connections/{connection_id}"))

    def find_connector_by_name(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self._call("GET", "/api/connections") or [] if c.get("name") == name), None)

    def validate_patch(self, patch: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        if not isinstance(patch, dict):
            raise ValueError("patch: expected a JSON object")
        for key in patch:
            if key not in UPDATE_FIELDS:
                raise ValueError(
                    f"{key}: not a field Polytomic connections accept ({', '.join(sorted(UPDATE_FIELDS))})"
                )
        if "configuration" in patch and not isinstance(patch["configuration"], dict):
            raise ValueError("configuration: expected an object")
        if patch.get("name", "x") in (None, ""):
            raise ValueError("name: required; it cannot be removed")

    def patch_connector(self, connection_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch semantics on an API that replaces the whole configuration: read, merge (RFC 7396), send all.

        Secrets come back masked (``********``); sending the mask back keeps them, as the API documents."""
        self.validate_patch(patch)
        current = self.get_connector(connection_id)
        kept = ("healthcheck_interval", "policies")  # what a full replacement would otherwise reset
        body = {
            "name": current.get("name"),
            "configuration": current.get("configuration") or {},
            **{key: current[key] for key in kept if current.get(key) is not None},
        }
        merged = merge_patch(body, patch)
        return dict(self._call("PATCH", f"/api/connections/{connection_id}", json=merged))

    def delete_connector(self, connection_id: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/api/connections/{connection_id}", params={"force": "true"} if force else None)

    # -- bulk sync settings ----------------------------------------------------------------------------------------
    def get_bulk_sync(self, sync_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/bulk/syncs/{sync_id}"))

    def set_schedule(self, sync_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
        """The bulk sync's ``default_schedule``: ``{"frequency": "daily", "hour": "3", "minute": "0"}``.

        The update replaces the whole sync, so the sync is read and sent back with only the schedule changed."""
        default_schedule = schedule_request(schedule)
        body = bulk_update_body(self.get_bulk_sync(sync_id), default_schedule)
        return dict(self._call("PUT", f"/api/bulk/syncs/{sync_id}", json=body))

    def pause_connector(self, sync_id: str) -> None:
        """Deactivate the bulk sync (no scheduled runs); the API also cancels the execution in progress."""
        self._call("POST", f"/api/bulk/syncs/{sync_id}/activate", json={"active": False}, idempotent=True)

    def resume_connector(self, sync_id: str) -> None:
        self._call("POST", f"/api/bulk/syncs/{sync_id}/activate", json={"active": True}, idempotent=True)

    # -- syncs ------------------------------------------------------------------------------------------------------
    def trigger_sync(
        self, connector_id: str, *, resync: bool | list[str] = False, force: bool = False, **options: Any
    ) -> SyncRef:
        """Start an execution of the sync whose id is ``connector_id`` (the interface's name, kept because vendor
        options travel as keywords). Bulk (default): ``fetch_mode`` none|incremental|full, ``resync_mode``
        refetch|resync|rebuild (``resync=True`` means ``resync``; a list of schemas/tables goes in ``schemas``).
        ``sync_kind="model"``: a model sync, ``resync`` a bool. ``force`` cancels a running bulk execution and,
        once it has ended, starts this one."""
        sync_id = connector_id
        kind = options.pop("sync_kind", "bulk")
        unpause = bool(options.pop("unpause", False))
        if kind == "model":
            if options or not isinstance(resync, bool):
                raise ValueError("resync: a model sync takes resync=True or False, and no other option")
            execution = self._call("POST", f"/api/syncs/{sync_id}/executions", json={"resync": resync})
            return SyncRef(self.conn_type, sync_id, str(execution["id"]), {"kind": "model"})
        if kind != "bulk":
            raise ValueError(f"sync_kind: expected bulk or model, got {kind!r}")
        body = self._bulk_body(resync, options)
        if unpause:
            self.resume_connector(sync_id)
        try:
            execution = self._call("POST", f"/api/bulk/syncs/{sync_id}/executions", json=body)
        except ApiConflict:
            active = self.find_active_sync(sync_id) if force else None
            if active is None:
                raise
            self.log.info("force: cancelling execution %s of bulk sync %s", active.run_id, sync_id)
            self.cancel_sync(active)
            self.wait_cancelled(active)
            execution = self._call("POST", f"/api/bulk/syncs/{sync_id}/executions", json=body)
        return SyncRef(self.conn_type, sync_id, str(execution["id"]), {"kind": "bulk"})

    @staticmethod
    def _bulk_body(resync: bool | list[str], options: dict[str, Any]) -> dict[str, Any]:
        fetch_mode = options.pop("fetch_mode", None)
        resync_mode = options.pop("resync_mode", "resync" if resync else None)
        if options:
            raise ValueError(f"{sorted(options)[0]}: not an option of Polytomic bulk syncs")
        if fetch_mode is not None and fetch_mode not in FETCH_MODES:
            raise ValueError(f"fetch_mode: {fetch_mode!r} is not one of {', '.join(sorted(FETCH_MODES))}")
        if resync_mode is not None and resync_mode not in RESYNC_MODES:
            raise ValueError(f"resync_mode: {resync_mode!r} is not one of {', '.join(sorted(RESYNC_MODES))}")
        body: dict[str, Any] = {}
        if fetch_mode:
            body["fetch_mode"] = fetch_mode
        if resync_mode:
            body["resync_mode"] = resync_mode
        if isinstance(resync, list):
            if not resync:
                raise ValueError("resync: give at least one schema, or True")
            body["schemas"] = list(resync)
        return body

    def _execution_path(self, ref: SyncRef) -> str:
        """``ref.connector_id`` is the bulk sync's or the model sync's id (``baseline["kind"]`` says which)."""
        base = "syncs" if ref.baseline.get("kind") == "model" else "bulk/syncs"
        return f"/api/{base}/{ref.connector_id}/executions/{ref.run_id}"

    def get_sync_status(self, ref: SyncRef) -> SyncStatus:
        return execution_status(ref, self._call("GET", self._execution_path(ref)))

    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        return execution_status(ref, await self._acall("GET", self._execution_path(ref)))

    def cancel_sync(self, ref: SyncRef) -> bool:
        """Cancel this execution (bulk or model), never another one of the same sync. ``False`` when it has
        already ended (the API then answers 404 for a bulk execution, 400 for a model sync execution)."""
        try:
            self._call("POST", self._execution_path(ref) + "/cancel", idempotent=True)
        except (ApiNotFound, ApiValidationError):
            if self.get_sync_status(ref).state.terminal:
                return False
            raise
        return True

    async def acancel_sync(self, ref: SyncRef) -> bool:
        try:
            await self._acall("POST", self._execution_path(ref) + "/cancel", idempotent=True)
        except (ApiNotFound, ApiValidationError):
            if (await self.aget_sync_status(ref)).state.terminal:
                return False
            raise
        return True

    def find_active_sync(self, sync_id: str) -> SyncRef | None:
        current = (self._call("GET", f"/api/bulk/syncs/{sync_id}/status") or {}).get("current_execution")
        if current and STATES.get(str(current.get("status")), SyncState.RUNNING) is SyncState.RUNNING:
            return SyncRef(self.conn_type, sync_id, str(current["id"]), {"kind": "bulk"})
        return None

    def written_table_names(self, ref: SyncRef) -> tuple[str, ...]:
        """A model sync's target object, or the tables of a bulk sync's enabled schemas."""
        if ref.baseline.get("kind") == "model":
            return tuple(model_sync_tables(self._call("GET", f"/api/syncs/{ref.connector_id}")))
        sync = self._call("GET", f"/api/bulk/syncs/{ref.connector_id}")
        schemas = self._call("GET", f"/api/bulk/syncs/{ref.connector_id}/schemas") or []
        return tuple(bulk_sync_tables(sync, schemas))

    # -- links -------------------------------------------------------------------------------------------------------
    def connector_url(self, connection_id: str) -> str | None:
        return f"https://app.polytomic.com/connections/{connection_id}"

    def sync_url(self, ref: SyncRef) -> str | None:
        if ref.baseline.get("kind") == "model":
            return f"https://app.polytomic.com/syncs/{ref.connector_id}"
        return f"https://app.polytomic.com/bulk-syncs/{ref.connector_id}"

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", "/api/connections")
        except Exception as exc:  # shown in the UI; the HTTP layer's messages carry no secret
            return False, str(exc)
        return True, "Polytomic API reachable, key accepted"
