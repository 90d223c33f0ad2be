"""Hook of the shared CDC core service (connection type ``cdc_core``): connectors, validation, runs, commands.

Connection: ``host`` is the service's base URL (``http://cdc:8080``, the API lives under ``/api/v1``), the bearer
token goes in ``password``. Requests go through the shared HTTP layer (timeouts, retries, 429, error mapping,
secret masking). Patches are checked locally with the service's own rules
(``airflow_connectors.cdc.connectors.patch``) before anything is sent, so a DAG fails at the task that built a
bad patch, with the message the API would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import ValidationError

from airflow_connectors.cdc.connectors.models import Connector, Schedule
from airflow_connectors.cdc.connectors.patch import PatchError, apply_patch, check_patch
from airflow_connectors.cdc.runs.models import RunCreate
from airflow_connectors.cdc.runs.state_machine import ACTIVE_STATES, RunState
from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiConflict, HttpApiHook
from airflow_connectors.hooks.postgres_connection import resolve_connection_references
from airflow_connectors.lineage import Dataset, cdc_datasets

API = "/api/v1"
CONSOLE = "/console"
# How long ``trigger_sync(force=True)`` waits for the run it cancelled to end.
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
# The service's run states (its own state machine) as the common ones: every active state is running.
SYNC_STATES = {
    **dict.fromkeys(ACTIVE_STATES, SyncState.RUNNING),
    RunState.SUCCEEDED: SyncState.SUCCESS,
    RunState.FAILED: SyncState.FAILED,
    RunState.CANCELLED: SyncState.CANCELLED,
}


def _field_error(exc: ValidationError, prefix: str) -> ValueError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
    return ValueError(f"{where}: {first['msg']}")


def verification_error(run: dict[str, Any]) -> str | None:
    """Why a run does not prove its replica equal: not verified, verification not finished, or tables differ."""
    what = f"connector {run['connector_id']} run {run['run_id']}"
    report = run.get("verification")
    if report is None:
        if run.get("verify") and run["state"] not in ("succeeded",):
            return f"{what} ended {run['state']} before its verification: {run.get('error') or 'no report'}"
        return f"{what} did not verify the replica (start it with verify=true, or POST .../verify)"
    if report["status"] != "equal":
        differing = [name for name, table in report["tables"].items() if table["status"] != "equal"]
        return run.get("error") or f"{what}: verification found differing tables: {', '.join(differing)}"
    return None


def run_status(ref: SyncRef, run: dict[str, Any]) -> SyncStatus:
    """A run of the service as the common status (rows, lag and tables from the run)."""
    return SyncStatus(
        state=SYNC_STATES[RunState(run["state"])],
        raw_state=run["state"],
        ref=ref,
        message=run.get("error"),
        rows=run.get("rows_total"),
        lag_bytes=run.get("lag_bytes"),
        tables=tuple(sorted(run.get("tables") or {})),
        details={
            **{key: run.get(key) for key in ("mode", "resync", "trigger", "wal_status", "fence_lsn", "applied_lsn")},
            "verify": run.get("verify", False),
            "verification": (run.get("verification") or {}).get("status"),
        },
    )


class CdcHook(HttpApiHook):
    """The CDC core service API (see the module docstring for the connection)."""

    conn_type = "cdc_core"
    can_verify = True
    default_conn_name = "cdc_core_default"
    hook_name = "CDC core (airflow-connectors)"
    connector_id_key: ClassVar[str] = "id"

    # -- connectors -------------------------------------------------------------------------------------------
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create; a non-empty ``body["id"]`` is used as the id (``POST /connectors/{id}``), else the service
        picks one. ``idempotency_key`` is not needed: an id chosen by the caller makes the create idempotent."""
        connector_id = body.get("id") or ""
        path = f"{API}/connectors/{connector_id}" if connector_id else f"{API}/connectors"
        document = resolve_connection_references({**body, "id": connector_id})
        return self._call("POST", path, json=document, idempotent=bool(connector_id))["connector"]

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        return self.get_connector_response(connector_id)["connector"]

    def get_connector_response(self, connector_id: str) -> dict[str, Any]:
        """The connector with its ``status`` (latest run, lag, ``wal_status``) and latest ``run_id``."""
        return self._call("GET", f"{API}/connectors/{connector_id}")

    def find_connector_by_name(self, name: str) -> dict[str, Any] | None:
        items = self._call("GET", f"{API}/connectors", params={"name": name, "limit": 1})["items"]
        return items[0]["connector"] if items else None

    def list_connectors(self, name: str | None = None, page_size: int = 50) -> list[dict[str, Any]]:
        """Every connector (following ``next_cursor``)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": page_size, **({"name": name} if name else {})}
        while True:
            page = self._call("GET", f"{API}/connectors", params=params)
            found.extend(item["connector"] for item in page["items"])
            if not page.get("next_cursor"):
                return found
            params["cursor"] = page["next_cursor"]

    def validate_patch(self, patch: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        """The service's patch rules (``cdc.connectors.patch``): source/sink type not changed, required fields not
        removed; with ``current``, also host/port/database kept and the patched connector valid (e.g. no two tables
        sharing a sink table). ``ValueError`` names the field."""
        if not isinstance(patch, dict):
            raise ValueError("patch: a merge patch of a connector must be a JSON object")
        patch = resolve_connection_references(patch)
        try:
            if current is None:
                check_patch(None, patch)
            else:
                apply_patch(Connector.model_validate(current), patch)
        except PatchError as exc:
            raise ValueError(str(exc)) from None
        except ValidationError as exc:
            raise _field_error(exc, "") from None

    def patch_connector(self, connector_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Send a merge patch after the checks that need no request (:meth:`validate_patch` without ``current``;
        pass the stored connector to it first for the full check)."""
        document = resolve_connection_references(patch)
        self.validate_patch(document)
        return self._call("PATCH", f"{API}/connectors/{connector_id}", json=document, headers=MERGE_PATCH)["connector"]

    def delete_connector(self, connector_id: str, *, keep_replication_objects: bool = False) -> None:
        params = {"keep_replication_objects": str(keep_replication_objects).lower()}
        self._call("DELETE", f"{API}/connectors/{connector_id}", params=params)

    def set_schedule(self, connector_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
        """``{"interval_seconds": n}`` or ``{"cron": "...", "timezone": "..."}``, validated before sending."""
        try:
            Schedule.model_validate(schedule)
        except ValidationError as exc:
            raise _field_error(exc, "schedule") from None
        return self.patch_connector(connector_id, {"schedule": schedule})

    def command(self, connector_id: str, command: str) -> dict[str, Any]:
        """``start`` | ``stop`` | ``pause`` | ``resume``; returns the connector response."""
        return self._call(
            "POST",
            f"{API}/connectors/{connector_id}/commands",
            json={"command": command},
            idempotent=command != "start",
        )

    def pause_connector(self, connector_id: str) -> None:
        self.command(connector_id, "pause")

    def resume_connector(self, connector_id: str) -> None:
        self.command(connector_id, "resume")

    def validate_source(
        self, postgres: dict[str, Any] | None = None, connector_id: str | None = None
    ) -> dict[str, Any]:
        """Run the service's source checks (reachability, ``wal_level``, privileges...): ``{"ok", "steps"}``."""
        return self._validate("source", postgres, connector_id)

    def validate_sink(self, postgres: dict[str, Any] | None = None, connector_id: str | None = None) -> dict[str, Any]:
        return self._validate("sink", postgres, connector_id)

    def _validate(self, side: str, postgres: dict[str, Any] | None, connector_id: str | None) -> dict[str, Any]:
        params = {"connector_id": connector_id} if connector_id else None
        body = {"postgres": postgres} if postgres is not None else None  # None: the connector's own settings
        return self._call("POST", f"{API}/validate/{side}", json=body, params=params, idempotent=True)

    # -- runs -------------------------------------------------------------------------------------------------
    def start_run(
        self, connector_id: str, *, mode: str = "catch_up", resync: bool | list[str] = False, verify: bool = False
    ) -> dict[str, Any]:
        """Queue a run (``verify``: compare source and sink once caught up, see :meth:`verify_connector`);
        :class:`ApiConflict` (code ``run_active``) when one is active."""
        try:
            body = RunCreate.model_validate({"mode": mode, "resync": resync, "verify": verify})
        except ValidationError as exc:
            raise _field_error(exc, "") from None
        return self._call("POST", f"{API}/connectors/{connector_id}/runs", json=body.model_dump(mode="json"))

    def verify_connector(self, connector_id: str) -> dict[str, Any]:
        """Queue a verifying catch-up run; its ``verification`` (per table equal / differing, with keys) arrives
        on the run, which fails when a table differs. :class:`ApiConflict` while another run is active."""
        return self._call("POST", f"{API}/connectors/{connector_id}/verify")

    def verification_error(self, ref: SyncRef) -> str | None:
        """Why run ``ref`` does not prove its replica equal to the source, or None when it verified it equal."""
        return verification_error(self.get_run(ref.connector_id, str(ref.run_id)))

    def get_run(self, connector_id: str, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"{API}/connectors/{connector_id}/runs/{run_id}")

    def list_runs(self, connector_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` runs."""
        return self._call("GET", f"{API}/connectors/{connector_id}/runs", params={"limit": limit})["items"]

    def cancel_run(self, connector_id: str, run_id: str) -> bool:
        """``False`` when the run had already ended."""
        try:
            self._call("POST", f"{API}/connectors/{connector_id}/runs/{run_id}/cancel", idempotent=True)
        except ApiConflict:
            return False
        return True

    # -- the common sync interface ----------------------------------------------------------------------------
    def trigger_sync(
        self, connector_id: str, *, resync: bool | list[str] = False, force: bool = False, **options: Any
    ) -> SyncRef:
        """Start a run (options: ``mode``, ``catch_up`` by default; ``verify``). When a run is active the service
        refuses (:class:`ApiConflict`; :meth:`find_active_sync` gives that run) unless ``force``: then the active
        run is cancelled and, once it has ended, this one is started."""
        mode, verify = options.pop("mode", "catch_up"), bool(options.pop("verify", False))
        if options:
            raise ValueError(f"{', '.join(sorted(options))}: not an option of CDC core runs")
        try:
            run = self.start_run(connector_id, mode=mode, resync=resync, verify=verify)
        except ApiConflict:
            active = self.find_active_sync(connector_id) if force else None
            if active is None:
                raise
            self.log.info("force: cancelling active run %s of connector %s", active.run_id, connector_id)
            self.cancel_sync(active)
            self.wait_cancelled(active)
            run = self.start_run(connector_id, mode=mode, resync=resync, verify=verify)
        return SyncRef(conn_type=self.conn_type, connector_id=connector_id, run_id=run["run_id"])

    def get_sync_status(self, ref: SyncRef) -> SyncStatus:
        return run_status(ref, self.get_run(ref.connector_id, str(ref.run_id)))

    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        return run_status(ref, await self._acall("GET", f"{API}/connectors/{ref.connector_id}/runs/{ref.run_id}"))

    def cancel_sync(self, ref: SyncRef) -> bool:
        return self.cancel_run(ref.connector_id, str(ref.run_id))

    async def acancel_sync(self, ref: SyncRef) -> bool:
        try:
            await self._acall("POST", f"{API}/connectors/{ref.connector_id}/runs/{ref.run_id}/cancel", idempotent=True)
        except ApiConflict:
            return False
        return True

    def find_active_sync(self, connector_id: str) -> SyncRef | None:
        runs = self.list_runs(connector_id, limit=1)
        if runs and RunState(runs[0]["state"]) in ACTIVE_STATES:
            return SyncRef(conn_type=self.conn_type, connector_id=connector_id, run_id=runs[0]["run_id"])
        return None

    def lineage_datasets(self, ref: SyncRef, tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
        """Source tables in, sink tables out, where the connector says the two databases are and the run says each
        table was written (sink names are decided by the service, never re-derived here)."""
        run = self.get_run(ref.connector_id, str(ref.run_id)) if ref.run_id else {}
        return cdc_datasets(self.get_connector(ref.connector_id), tables, run.get("sink_tables") or {})

    # -- links ------------------------------------------------------------------------------------------------
    # The service's web console (a browser cannot send the API's bearer token; the console signs people in).
    def connector_url(self, connector_id: str) -> str | None:
        return f"{self.base_url}{CONSOLE}/connectors/{quote(connector_id, safe='')}"

    def sync_url(self, ref: SyncRef) -> str | None:
        if not ref.run_id:
            return None
        return f"{self.connector_url(ref.connector_id)}/runs/{quote(ref.run_id, safe='')}"

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", f"{API}/connectors", params={"limit": 1})
        except Exception as exc:  # the UI shows the message; the HTTP layer's messages carry no secret
            return False, str(exc)
        return True, "CDC core service reachable, token accepted"
