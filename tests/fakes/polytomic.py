"""A fake Polytomic API: connections, bulk syncs (ELT) and model syncs (reverse ETL) with executions over time.

Follows ``shared/contracts/polytomic.md``: ``{"data": ...}`` envelopes, errors ``{"key", "message", "metadata",
"status"}``, Bearer API key or Basic deployment key, the ``X-Polytomic-Version`` header required, ``Idempotency-Key``
on creates (the same key returns the same resource), 409 when a bulk execution is already running. An execution
is ``created``, then ``running`` at the next poll, then ``completed`` (or what ``outcomes`` says) once
``run_seconds`` have passed.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from tests.fakes.server import FakeApi, Request, route

VERSION = "2025-09-18"
TERMINAL = {"completed", "failed", "canceled", "errors", "interrupted"}


class FakePolytomic(FakeApi):
    name = "polytomic"
    error_body = staticmethod(
        lambda status, message: {"key": f"http_{status}", "message": message, "metadata": {}, "status": status}
    )

    def __init__(self, api_key: str = "polytomic-key-3c8b", deployment_key: str = "deploy-key-77aa") -> None:
        super().__init__()
        self.api_key, self.deployment_key = api_key, deployment_key
        self.connections: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}  # connection id -> secret configuration values
        self.bulk_syncs: dict[str, dict[str, Any]] = {}
        self.model_syncs: dict[str, dict[str, Any]] = {"model-sync-1": {"id": "model-sync-1", "name": "to CRM"}}
        self.executions: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, str] = {}  # sync id -> final status of its next execution
        self.run_seconds = 0.3
        self.idempotency: dict[str, tuple[int, Any]] = {}

    # -- plumbing ----------------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{self.deployment_key}:".encode()).decode()
        return header in (f"Bearer {self.api_key}", f"Basic {basic}")

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("x-polytomic-version") != VERSION:
            return 400, self.error_body(400, "X-Polytomic-Version header is required"), {}
        key = request.headers.get("idempotency-key")
        if key and request.method in ("POST", "PUT", "PATCH") and (request.method, key) in self.idempotency:
            status, body = self.idempotency[(request.method, key)]  # type: ignore[index]
            return status, body, {"Idempotent-Replayed": "true"}
        status, body, headers = super()._answer(request)
        if key and request.method in ("POST", "PUT", "PATCH") and status < 300:
            self.idempotency[(request.method, key)] = (status, body)  # type: ignore[index]
        return status, body, headers

    @staticmethod
    def data(value: Any, status: int = 200) -> tuple[int, Any]:
        return status, {"data": value}

    def error(self, status: int, message: str) -> tuple[int, Any]:
        return status, self.error_body(status, message)

    def _masked(self, connection: dict[str, Any]) -> dict[str, Any]:
        secrets = self.secrets.get(connection["id"], {})
        configuration = {k: ("********" if k in secrets else v) for k, v in connection["configuration"].items()}
        return {**connection, "configuration": configuration}

    # -- connections -------------------------------------------------------------------------------------------
    def _store_configuration(self, cid: str, configuration: dict[str, Any]) -> dict[str, Any]:
        secrets = self.secrets.setdefault(cid, {})
        stored = {}
        for key, value in configuration.items():
            if key == "password":
                if value != "********":  # the masked value keeps the stored secret
                    secrets[key] = value
            stored[key] = value if key != "password" else "<secret>"
        return stored

    @route("GET", r"/api/connections")
    def list_connections(self, request: Request) -> tuple[int, Any]:
        return self.data([self._masked(c) for c in self.connections.values()])

    @route("POST", r"/api/connections")
    def create_connection(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        for field in ("name", "type", "configuration"):
            if not body.get(field):
                return self.error(422, f"{field} is required")
        cid = str(uuid.uuid4())
        self.connections[cid] = {
            "id": cid,
            "name": body["name"],
            "type": {"id": body["type"], "name": body["type"]},
            "configuration": self._store_configuration(cid, dict(body["configuration"])),
            "status": "healthy",
            "saved": True,
            "healthcheck_interval": body.get("healthcheck_interval", "3h30m"),
        }
        return self.data(self._masked(self.connections[cid]), 201)

    @route("GET", r"/api/connections/(?P<id>[^/]+)")
    def get_connection(self, request: Request) -> tuple[int, Any]:
        connection = self.connections.get(request.params["id"])
        return self.data(self._masked(connection)) if connection else self.error(404, "connection not found")

    @route("PATCH", r"/api/connections/(?P<id>[^/]+)")
    def update_connection(self, request: Request) -> tuple[int, Any]:
        connection = self.connections.get(request.params["id"])
        if connection is None:
            return self.error(404, "connection not found")
        body = request.body if isinstance(request.body, dict) else {}
        if "configuration" not in body or "name" not in body:
            return self.error(422, "configuration and name are required")
        # The configuration is replaced as a whole: what the body leaves out is gone.
        connection["configuration"] = self._store_configuration(connection["id"], dict(body["configuration"]))
        if "password" not in body["configuration"]:
            self.secrets.get(connection["id"], {}).pop("password", None)
        connection["name"] = body["name"]
        return self.data(self._masked(connection))

    @route("DELETE", r"/api/connections/(?P<id>[^/]+)")
    def delete_connection(self, request: Request) -> tuple[int, Any]:
        cid = request.params["id"]
        if cid not in self.connections:
            return self.error(404, "connection not found")
        in_use = any(
            cid in (s.get("source_connection_id"), s.get("destination_connection_id")) for s in self.bulk_syncs.values()
        )
        if in_use and request.arg("force") != "true":
            return self.error(422, "connection is used by a sync; pass force=true")
        del self.connections[cid]
        return 204, None

    # -- bulk syncs --------------------------------------------------------------------------------------------
    def add_bulk_sync(self, name: str = "warehouse load", **fields: Any) -> str:
        sid = str(uuid.uuid4())
        self.bulk_syncs[sid] = {
            "id": sid,
            "name": name,
            "active": True,
            "mode": "replicate",
            "schedule": {"frequency": "manual"},
            **fields,
        }
        return sid

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)")
    def get_bulk_sync(self, request: Request) -> tuple[int, Any]:
        sync = self.bulk_syncs.get(request.params["id"])
        return self.data(sync) if sync else self.error(404, "bulk sync not found")

    @route("PUT", r"/api/bulk/syncs/(?P<id>[^/]+)")
    def update_bulk_sync(self, request: Request) -> tuple[int, Any]:
        sync = self.bulk_syncs.get(request.params["id"])
        if sync is None:
            return self.error(404, "bulk sync not found")
        body = request.body if isinstance(request.body, dict) else {}
        frequency = (body.get("schedule") or {}).get("frequency")
        allowed = {
            "manual",
            "continuous",
            "hourly",
            "daily",
            "weekly",
            "custom",
            "builder",
            "runafter",
            "multi",
            "dbtcloud",
        }
        if "schedule" in body and frequency not in allowed:
            return self.error(422, f"schedule.frequency must be one of {sorted(allowed)}")
        sync.update({key: value for key, value in body.items() if key != "id"})
        return self.data(sync)

    def _execution(self, sync_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        eid = str(uuid.uuid4())
        execution = {
            "id": eid,
            "sync_id": sync_id,
            "kind": kind,
            "status": "created",
            "started_at": None,
            "completed_at": None,
            "record_count": 0,
            "error_count": 0,
            "warning_count": 0,
            "is_resync": bool(body.get("resync_mode") or body.get("resync")),
            "request": body,
            "_created": time.monotonic(),
        }
        self.executions[eid] = execution
        return execution

    def _advance(self, execution: dict[str, Any]) -> dict[str, Any]:
        if execution["status"] == "created":
            execution["status"] = "running"
            execution["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        elif execution["status"] == "canceling":
            execution["status"] = "canceled"
        elif execution["status"] == "running" and time.monotonic() - execution["_created"] >= self.run_seconds:
            execution["status"] = self.outcomes.pop(execution["sync_id"], "completed")
            execution["record_count"] = 1234 if execution["status"] == "completed" else 0
            execution["error_count"] = 0 if execution["status"] == "completed" else 3
            execution["completed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {key: value for key, value in execution.items() if not key.startswith("_")}

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/executions")
    def start_bulk(self, request: Request) -> tuple[int, Any]:
        sid = request.params["id"]
        if sid not in self.bulk_syncs:
            return self.error(404, "bulk sync not found")
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("fetch_mode") not in (None, "none", "incremental", "full"):
            return self.error(422, "fetch_mode must be none, incremental or full")
        if body.get("resync_mode") not in (None, "refetch", "resync", "rebuild"):
            return self.error(422, "resync_mode must be refetch, resync or rebuild")
        if body.get("test") and body.get("resync_mode"):
            return self.error(422, "test and resync_mode are exclusive")
        running = [
            e for e in self.executions.values() if e["sync_id"] == sid and self._advance(e)["status"] not in TERMINAL
        ]
        if running:
            return self.error(409, f"an execution is already running: {running[0]['id']}")
        return self.data(self._advance(self._execution(sid, "bulk", body)) | {"status": "created"}, 200)

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/executions/(?P<exec>[^/]+)")
    def get_bulk_execution(self, request: Request) -> tuple[int, Any]:
        execution = self.executions.get(request.params["exec"])
        if execution is None or execution["sync_id"] != request.params["id"]:
            return self.error(404, "execution not found")
        return self.data(self._advance(execution))

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/status")
    def bulk_status(self, request: Request) -> tuple[int, Any]:
        sid = request.params["id"]
        runs = [e for e in self.executions.values() if e["sync_id"] == sid]
        last = runs[-1] if runs else None
        return self.data({"current_execution": self._advance(last) if last else None})

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/cancel")
    def cancel_bulk(self, request: Request) -> tuple[int, Any]:
        sid = request.params["id"]
        running = [e for e in self.executions.values() if e["sync_id"] == sid and e["status"] not in TERMINAL]
        if not running:
            return self.error(404, "no running execution")
        for execution in running:
            execution["status"] = "canceling"
        return self.data({"message": "canceling"})

    # -- model syncs -------------------------------------------------------------------------------------------
    @route("POST", r"/api/syncs/(?P<id>[^/]+)/executions")
    def start_model(self, request: Request) -> tuple[int, Any]:
        sid = request.params["id"]
        if sid not in self.model_syncs:
            return self.error(404, "sync not found")
        body = request.body if isinstance(request.body, dict) else {}
        return self.data(self._advance(self._execution(sid, "model", body)) | {"status": "created"})

    @route("GET", r"/api/syncs/(?P<id>[^/]+)/executions/(?P<exec>[^/]+)")
    def get_model_execution(self, request: Request) -> tuple[int, Any]:
        execution = self.executions.get(request.params["exec"])
        if execution is None or execution["sync_id"] != request.params["id"]:
            return self.error(404, "execution not found")
        view = self._advance(execution)
        view["counts"] = {"insert": view["record_count"], "update": 0, "delete": 0, "total": view["record_count"]}
        return self.data(view)
