"""Hook of the B3OS connectors API (connection type ``b3os``): typed credential records for a workflow platform.

Connection: the bearer token in ``password``; ``host`` empty for https://api.b3os.org.

A B3OS connector is a stored credential, not a pipeline: it has no syncs, schedules or runs. The create / get /
patch methods of the common interface work; the sync methods raise a clear error instead of pretending. ``data``
is validated locally against the connector type's ``dataSchema`` before anything is sent, and the ``maskedData``
B3OS returns is never sent back as ``data`` (a patch must give every masked field it keeps in ``data``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jsonschema

from airflow_connectors.hooks.base import SyncRef, SyncStatus
from airflow_connectors.hooks.http import HttpApiHook
from airflow_connectors.merge_patch import merge_patch

UPDATABLE = frozenset({"data", "description", "name"})
MASK_MARKERS = ("****",)


class NotAPipeline(NotImplementedError):
    """B3OS connectors are credentials: there is nothing to sync, schedule, pause or cancel."""


def _not_a_pipeline(what: str) -> NotAPipeline:
    return NotAPipeline(f"B3OS connectors are stored credentials, not pipelines: they cannot {what}")


class B3osHook(HttpApiHook):
    """B3OS connectors (see the module docstring)."""

    conn_type = "b3os"
    default_url = "https://api.b3os.org"
    default_conn_name = "b3os_default"
    hook_name = "B3OS (airflow-connectors)"
    connector_id_key: ClassVar[str] = "id"

    def unwrap(self, payload: Any) -> Any:
        return payload.get("data", payload) if isinstance(payload, dict) else payload

    # -- connector types ------------------------------------------------------------------------------------------
    def list_connector_types(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/connector-types") or [])

    def get_connector_type(self, type_name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/connector-types/{type_name}"))

    def validate_data(self, type_name: str, data: Any) -> None:
        """``data`` checked against the type's ``dataSchema``; ``ValueError`` names the field."""
        schema = self.get_connector_type(type_name).get("dataSchema") or {}
        try:
            jsonschema.validate(data, schema)
        except jsonschema.ValidationError as exc:
            where = "".join(f".{part}" for part in exc.path)
            raise ValueError(f"data{where}: {exc.message}") from None

    # -- connectors -------------------------------------------------------------------------------------------------
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        for field in ("name", "type"):
            if not body.get(field):
                raise ValueError(f"{field}: required to create a B3OS connector")
        if "maskedData" in body:
            raise ValueError("maskedData: computed by B3OS; send the real values in data")
        unknown = set(body) - {"name", "type", "description", "data"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: not a field of B3OS connectors")
        self.validate_data(body["type"], body.get("data", {}))
        return dict(self._call("POST", "/v1/connectors", json=body))

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/connectors/{connector_id}"))

    def find_connector_by_name(self, name: str) -> dict[str, Any] | None:
        raise ValueError(
            "name: the B3OS API has no connector listing, so connectors cannot be found by name; "
            "use if_exists='fail' and keep the returned id"
        )

    def validate_patch(self, patch: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        if not isinstance(patch, dict):
            raise ValueError("patch: expected a JSON object")
        unknown = set(patch) - UPDATABLE
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: B3OS connectors accept only {', '.join(sorted(UPDATABLE))}")
        if "data" in patch and not isinstance(patch["data"], dict):
            raise ValueError("data: expected an object")

    def patch_connector(self, connector_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """``PUT`` with merge semantics: ``data`` is merged onto what B3OS shows (``maskedData``); a field still
        masked after the merge is refused rather than sent back masked."""
        self.validate_patch(patch)
        body: dict[str, Any] = {key: patch[key] for key in ("name", "description") if key in patch}
        if "data" in patch:
            current = self.get_connector(connector_id)
            data = merge_patch(current.get("maskedData") or {}, patch["data"])
            masked = sorted(key for key, value in data.items() if value in MASK_MARKERS)
            if masked:
                raise ValueError(f"data.{masked[0]}: B3OS only shows it masked; give its value in the patch")
            self.validate_data(str(current.get("type")), data)
            body["data"] = data
        return dict(self._call("PUT", f"/v1/connectors/{connector_id}", json=body))

    def delete_connector(self, connector_id: str) -> None:
        raise NotAPipeline("the B3OS connectors API (as published) has no delete; remove it in the B3OS app")

    # -- what credentials cannot do ------------------------------------------------------------------------------------
    def set_schedule(self, connector_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
        raise _not_a_pipeline("have a schedule")

    def pause_connector(self, connector_id: str) -> None:
        raise _not_a_pipeline("be paused")

    def resume_connector(self, connector_id: str) -> None:
        raise _not_a_pipeline("be resumed")

    def trigger_sync(
        self, connector_id: str, *, resync: bool | list[str] = False, force: bool = False, **options: Any
    ) -> SyncRef:
        raise _not_a_pipeline("sync")

    def get_sync_status(self, ref: SyncRef) -> SyncStatus:
        raise _not_a_pipeline("sync")

    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        raise _not_a_pipeline("sync")

    def cancel_sync(self, ref: SyncRef) -> bool:
        return False

    async def acancel_sync(self, ref: SyncRef) -> bool:
        return False

    def find_active_sync(self, connector_id: str) -> SyncRef | None:
        return None

    # -- links -----------------------------------------------------------------------------------------------------
    def connector_url(self, connector_id: str) -> str | None:
        return f"{self.base_url}/v1/connectors/{connector_id}"

    def sync_url(self, ref: SyncRef) -> str | None:
        return None

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.list_connector_types()
        except Exception as exc:  # shown in the UI; the HTTP layer's messages carry no secret
            return False, str(exc)
        return True, "B3OS API reachable, token accepted"
