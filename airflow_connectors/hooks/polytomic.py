"""Hook of the Polytomic API (connection type ``polytomic``): connections, bulk syncs (ELT), model syncs.

Connection: the API key in ``password`` (Bearer), or with extra ``key_type = deployment_key`` an on-premises
deployment key (HTTP Basic, key as user); extra ``api_version`` is sent as ``X-Polytomic-Version``.

How the common interface maps: connector CRUD acts on Polytomic *connections*; syncs act on a *bulk sync* whose id
is the ``connector_id`` (``sync_kind="model"`` targets a model sync instead). Polytomic executions have ids, so a
sync is tracked by its execution id, never by timestamps.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiConflict, ApiNotFound, HttpApiHook
from airflow_connectors.merge_patch import merge_patch

DEFAULT_VERSION = "2025-09-18"
FETCH_MODES = frozenset({"none", "incremental", "full"})
RESYNC_MODES = frozenset({"refetch", "resync", "rebuild"})
FREQUENCIES = frozenset(
    {"manual", "continuous", "hourly", "daily", "weekly", "custom", "builder", "runafter", "multi", "dbtcloud"}
)
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
    raw = str(execution.get("status", "unknown"))
    state = STATES.get(raw, SyncState.RUNNING)
    counts = execution.get("counts") or {}
    rows = execution.get("record_count", counts.get("total"))
    message = None
    if state is SyncState.FAILED:
        message = f"Polytomic execution {ref.run_id} ended {raw} ({execution.get('error_count', '?')} errors)"
    elif state is SyncState.CANCELLED:
        message = f"Polytomic execution {ref.run_id} was cancelled"
    details = {
        key: execution.get(key) for key in ("started_at", "completed_at", "is_resync", "error_count", "warning_count")
    }
    return SyncStatus(state, raw, ref, message, rows=rows, details=details)


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

    # -- connections --------------------------------------------------------------------------------------------
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a connection; the ``Idempotency-Key`` makes a retried create return the same connection."""
        for field in ("name", "type", "configuration"):
            if not body.get(field):
                raise ValueError(f"{field}: required to create a Polytomic connection")
        key = idempotency_key or str(uuid.uuid4())
        return dict(
            self._call("POST", "/api/connections", json=body, headers={"Idempotency-Key": key}, idempotent=True)
        )

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/connections/{connector_id}"))

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

    def patch_connector(self, connector_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch semantics on an API that replaces the whole configuration: read, merge (RFC 7396), send all.

        Secrets come back masked (``********``); sending the mask back keeps them, as the API documents."""
        self.validate_patch(patch)
        current = self.get_connector(connector_id)
        body = {
            "name": current.get("name"),
            "configuration": current.get("configuration") or {},
            **(
                {"healthcheck_interval": current["healthcheck_interval"]} if current.get("healthcheck_interval") else {}
            ),
        }
        merged = merge_patch(body, patch)
        return dict(self._call("PATCH", f"/api/connections/{connector_id}", json=merged))

    def delete_connector(self, connector_id: str, *, force: bool = False) -> None:
        self._call("DELETE", f"/api/connections/{connector_id}", params={"force": "true"} if force else None)

    # -- bulk sync settings ----------------------------------------------------------------------------------------
    def get_bulk_sync(self, sync_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/bulk/syncs/{sync_id}"))

    def _update_bulk_sync(self, sync_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        current = self.get_bulk_sync(sync_id)
        return dict(self._call("PUT", f"/api/bulk/syncs/{sync_id}", json=merge_patch(current, changes)))

    def set_schedule(self, connector_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
        """The bulk sync's schedule: ``{"frequency": "daily", "hour": "3", "minute": "0"}``."""
        frequency = schedule.get("frequency")
        if frequency not in FREQUENCIES:
            raise ValueError(f"schedule.frequency: {frequency!r} is not one of {', '.join(sorted(FREQUENCIES))}")
        return self._update_bulk_sync(connector_id, {"schedule": schedule})

    def pause_connector(self, connector_id: str) -> None:
        self._update_bulk_sync(connector_id, {"active": False})

    def resume_connector(self, connector_id: str) -> None:
        self._update_bulk_sync(connector_id, {"active": True})

    # -- syncs ------------------------------------------------------------------------------------------------------
    def trigger_sync(
        self, connector_id: str, *, resync: bool | list[str] = False, force: bool = False, **options: Any
    ) -> SyncRef:
        """Start an execution. Bulk (default): ``fetch_mode`` none|incremental|full, ``resync_mode``
        refetch|resync|rebuild (``resync=True`` means ``resync``; a list of schemas/tables goes in ``schemas``).
        ``sync_kind="model"``: a model sync, ``resync`` a bool. ``force`` cancels a running bulk execution first."""
        kind = options.pop("sync_kind", "bulk")
        unpause = bool(options.pop("unpause", False))
        if kind == "model":
            if options or not isinstance(resync, bool):
                raise ValueError("resync: a model sync takes resync=True or False, and no other option")
            execution = self._call("POST", f"/api/syncs/{connector_id}/executions", json={"resync": resync})
            return SyncRef(self.conn_type, connector_id, str(execution["id"]), {"kind": "model"})
        if kind != "bulk":
            raise ValueError(f"sync_kind: expected bulk or model, got {kind!r}")
        body = self._bulk_body(resync, options)
        if unpause:
            self.resume_connector(connector_id)
        try:
            execution = self._call("POST", f"/api/bulk/syncs/{connector_id}/executions", json=body)
        except ApiConflict:
            if not force:
                raise
            self._call("POST", f"/api/bulk/syncs/{connector_id}/cancel")
            execution = self._call("POST", f"/api/bulk/syncs/{connector_id}/executions", json=body)
        return SyncRef(self.conn_type, connector_id, str(execution["id"]), {"kind": "bulk"})

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
        base = "syncs" if ref.baseline.get("kind") == "model" else "bulk/syncs"
        return f"/api/{base}/{ref.connector_id}/executions/{ref.run_id}"

    def get_sync_status(self, ref: SyncRef) -> SyncStatus:
        return execution_status(ref, self._call("GET", self._execution_path(ref)))

    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        return execution_status(ref, await self._acall("GET", self._execution_path(ref)))

    def cancel_sync(self, ref: SyncRef) -> bool:
        """Bulk executions can be cancelled; model sync executions cannot (the API has no call for it)."""
        if ref.baseline.get("kind") == "model":
            return False
        try:
            self._call("POST", f"/api/bulk/syncs/{ref.connector_id}/cancel")
        except ApiNotFound:
            return False  # nothing running any more
        return True

    async def acancel_sync(self, ref: SyncRef) -> bool:
        if ref.baseline.get("kind") == "model":
            return False
        try:
            await self._acall("POST", f"/api/bulk/syncs/{ref.connector_id}/cancel")
        except ApiNotFound:
            return False
        return True

    def find_active_sync(self, connector_id: str) -> SyncRef | None:
        current = (self._call("GET", f"/api/bulk/syncs/{connector_id}/status") or {}).get("current_execution")
        if current and STATES.get(str(current.get("status")), SyncState.RUNNING) is SyncState.RUNNING:
            return SyncRef(self.conn_type, connector_id, str(current["id"]), {"kind": "bulk"})
        return None

    # -- links -------------------------------------------------------------------------------------------------------
    def connector_url(self, connector_id: str) -> str | None:
        return f"https://app.polytomic.com/connections/{connector_id}"

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
