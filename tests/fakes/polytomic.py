"""A fake Polytomic API: connections, bulk syncs (ELT) and model syncs (reverse ETL) with executions over time.

Follows ``shared/contracts/polytomic.md`` and the official SDK (PyPI ``polytomic``, API version 2025-09-18), which
``tests/hooks/test_polytomic_sdk.py`` drives against this fake so the two cannot drift: the same paths, the
``{"data": ...}`` envelope, only the fields the SDK's response types declare, errors as
``{"key", "message", "metadata", "status"}``. Like the real (Go) API it ignores body fields it does not know, so
a client sending a wrong field name sees its change silently not applied, exactly as it would in production.

Behaviour modelled: Bearer API key or Basic deployment key; the ``X-Polytomic-Version`` header required;
``Idempotency-Key`` on writes (the same key on the same path replays the first answer); full-replacement updates
of connections (``PUT`` as the SDK sends, ``PATCH`` as the API reference documents) and of bulk syncs (omitted
fields reset to their defaults); masked secrets; 409 when an execution is already running; cancelling (per sync
or per execution) and deactivating a bulk sync cancel its running execution; opaque ``page_token`` pagination;
429 with ``Retry-After`` once more than ``rate_limit`` requests arrive in a window. An execution is ``created``,
``running`` from the next time it is looked at, then ``completed`` (or what ``outcomes`` says) once
``run_seconds`` have passed since it started; a cancelled one goes ``canceling`` then ``canceled``.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeApi, HttpError, Request, route

VERSION = "2025-09-18"
MASK = "********"
ORGANIZATION = "8a1e5cf4-6f4b-4c8e-9d2f-2f6a7c0e1b11"
SECRET_KEYS = frozenset({"password", "api_key", "client_secret", "private_key", "token"})
FREQUENCIES = frozenset(
    {"manual", "continuous", "hourly", "daily", "weekly", "custom", "builder", "runafter", "multi", "dbtcloud"}
)
SCHEDULE_FIELDS = ("frequency", "minute", "hour", "day_of_week", "day_of_month", "month")
ADDITIONAL_SCHEDULE_FIELDS = (*SCHEDULE_FIELDS, "resync_mode", "schemas", "selective_mode")
FETCH_MODES = frozenset({"none", "incremental", "full"})
RESYNC_MODES = frozenset({"refetch", "resync", "rebuild"})
TERMINAL = frozenset({"completed", "failed", "canceled", "errors", "interrupted"})
# What a bulk sync update writes, and what an omitted field resets to (SDK ``bulk_sync.update``).
BULK_REQUIRED = ("name", "source_connection_id", "destination_connection_id", "destination_configuration")
BULK_DEFAULTS: dict[str, Any] = {
    "active": False,
    "automatically_add_new_fields": "all",
    "automatically_add_new_objects": "none",
    "concurrency_limit": None,
    "data_cutoff_timestamp": None,
    "disable_record_timestamps": False,
    "mode": "replicate",
    "normalize_names": "enabled",
    "organization_id": ORGANIZATION,
    "policies": [],
    "resync_concurrency_limit": None,
    "source_configuration": {},
}
PAGE_LIMITS = {"bulk_syncs": 50, "bulk_executions": 100, "model_executions": 50}  # the API's page sizes


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body_of(request: Request) -> dict[str, Any]:
    if request.body is None:
        return {}
    if not isinstance(request.body, dict):
        raise HttpError(400, "request body: expected a JSON object")
    return request.body


@dataclass
class Execution:
    """One bulk or model sync execution; ``view`` is what the API returns for it."""

    id: str
    sync_id: str
    kind: str  # "bulk" | "model"
    request: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    created_at: str = field(default_factory=now_iso)
    status: str = "created"
    started: float | None = None
    started_at: str | None = None
    completed_at: str | None = None
    updated_at: str = field(default_factory=now_iso)
    record_count: int = 0
    error_count: int = 0
    seen: bool = False  # whether the current status has been shown: each status is, at least once

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def set_status(self, status: str) -> None:
        self.status, self.updated_at, self.seen = status, now_iso(), False

    def bulk_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": "manual",
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "updated_at": self.updated_at,
            "fetch_mode": self.request.get("fetch_mode") or "incremental",
            "is_resync": bool(self.request.get("resync_mode")),
            "is_test": bool(self.request.get("test")),
            "is_partial": bool(self.request.get("schemas")),
            "record_count": self.record_count,
            "error_count": self.error_count,
            "warning_count": 0,
            "status_message": "3 records were rejected by the destination" if self.error_count else None,
        }

    def model_view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": "manual",
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "counts": {
                "insert": self.record_count,
                "update": 0,
                "upserts": 0,
                "delete": 0,
                "error": self.error_count,
                "warnings": 0,
                "total": self.record_count,
            },
            "errors": ["3 records were rejected by the destination"] if self.error_count else [],
        }


class FakePolytomic(FakeApi):
    name = "polytomic"
    error_body = staticmethod(
        lambda status, message: {"key": f"http_{status}", "message": message, "metadata": {}, "status": status}
    )

    def __init__(self, api_key: str = "polytomic-key-3c8b", deployment_key: str = "deploy-key-77aa") -> None:
        super().__init__()
        self.api_key, self.deployment_key = api_key, deployment_key
        self.connections: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}  # connection id -> its secret configuration values
        self.bulk_syncs: dict[str, dict[str, Any]] = {}
        self.model_syncs: dict[str, dict[str, Any]] = {"model-sync-1": {"id": "model-sync-1", "name": "to CRM"}}
        self.schemas: dict[str, list[dict[str, Any]]] = {}  # bulk sync id -> its schemas (what it writes)
        self.executions: dict[str, Execution] = {}
        self.outcomes: dict[str, str] = {}  # sync id -> final status of its next execution
        self.run_seconds = 0.3
        self.rate_limit: tuple[int, float] | None = None  # (requests, per seconds); more get a 429
        self._arrivals: deque[float] = deque()
        self.idempotency: dict[tuple[str, str, str], tuple[int, Any]] = {}
        self.page_sizes = dict(PAGE_LIMITS)  # tests shrink them to see several pages

    # -- plumbing ----------------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{self.deployment_key}:".encode()).decode()
        return header in (f"Bearer {self.api_key}", f"Basic {basic}")

    def _throttled(self) -> float | None:
        """Seconds until a request is allowed again when the rate limit is exceeded, else None (and count it)."""
        if self.rate_limit is None:
            return None
        count, window = self.rate_limit
        now = time.monotonic()
        while self._arrivals and now - self._arrivals[0] >= window:
            self._arrivals.popleft()
        if len(self._arrivals) >= count:
            return window - (now - self._arrivals[0])
        self._arrivals.append(now)
        return None

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            wait = self._throttled()
        if wait is not None:
            return 429, self.error_body(429, "rate limit exceeded"), {"Retry-After": str(max(1, math.ceil(wait)))}
        if request.headers.get("x-polytomic-version") != VERSION:
            return 400, self.error_body(400, f"X-Polytomic-Version header is required (supported: {VERSION})"), {}
        key = request.headers.get("idempotency-key")
        slot = (request.method, request.path, key or "")
        if key and request.method != "GET" and slot in self.idempotency:
            status, body = self.idempotency[slot]
            return status, body, {"Idempotent-Replayed": "true"}
        status, body, headers = super()._answer(request)
        if key and request.method != "GET" and status < 300:
            self.idempotency[slot] = (status, body)
        return status, body, headers

    @staticmethod
    def data(value: Any, status: int = 200) -> tuple[int, Any]:
        return status, {"data": value}

    def error(self, status: int, message: str) -> tuple[int, Any]:
        return status, self.error_body(status, message)

    def page(self, items: list[Any], request: Request, listing: str) -> dict[str, Any]:
        """One page of at most ``page_sizes[listing]`` items (fewer with ``limit``) and, when more follow,
        ``pagination.next_page_token`` (opaque: base64 of an offset)."""
        maximum = self.page_sizes[listing]
        token = request.arg("page_token")
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except (ValueError, binascii.Error) as exc:
            raise HttpError(400, "page_token: not a token this API returned") from exc
        limit_arg = request.arg("limit")
        if limit_arg is not None and (not limit_arg.isdigit() or int(limit_arg) < 1):
            raise HttpError(400, "limit: expected a positive integer")
        limit = min(int(limit_arg) if limit_arg else maximum, maximum)
        chunk = items[offset : offset + limit]
        more = offset + limit < len(items)
        next_token = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
        return {"data": chunk, "pagination": {"next_page_token": next_token}}

    # -- connections -------------------------------------------------------------------------------------------
    def _store_configuration(self, cid: str, configuration: dict[str, Any]) -> dict[str, Any]:
        """Keep secrets aside; a masked value keeps the stored secret, an omitted one is cleared."""
        old = self.secrets.get(cid, {})
        secrets: dict[str, Any] = {}
        for key in SECRET_KEYS & configuration.keys():
            value = configuration[key]
            if value == MASK:
                if key not in old:
                    raise HttpError(422, f"configuration.{key}: the masked value stands for no stored secret")
                secrets[key] = old[key]
            else:
                secrets[key] = value
        self.secrets[cid] = secrets
        return {key: value for key, value in configuration.items() if key not in SECRET_KEYS}

    def _check_connection(self, body: dict[str, Any], creating: bool) -> None:
        for name in ("name", "configuration") + (("type",) if creating else ()):
            if not body.get(name):
                raise HttpError(422, f"{name}: required")
        if not isinstance(body["configuration"], dict):
            raise HttpError(400, "configuration: expected an object")
        if not isinstance(body["name"], str):
            raise HttpError(400, "name: expected a string")
        host = str(body["configuration"].get("hostname", ""))
        if body.get("validate", True) is not False and host.endswith(".invalid"):
            raise HttpError(422, f"configuration.hostname: connection test failed: cannot resolve {host}")

    def _connection_view(self, connection: dict[str, Any]) -> dict[str, Any]:
        """``ConnectionResponseSchema`` (GET, list): secrets masked."""
        secrets = self.secrets.get(connection["id"], {})
        return {
            "id": connection["id"],
            "name": connection["name"],
            "configuration": {**connection["configuration"], **dict.fromkeys(secrets, MASK)},
            "status": "healthy",
            "status_error": None,
            "saved": True,
            "organization_id": ORGANIZATION,
            "policies": connection["policies"],
            "type": {
                "id": connection["type"],
                "name": connection["type"].title(),
                "logo_url": f"https://connect-assets.polytomic.com/logos/{connection['type']}.svg",
                "operations": ["bulksyncsource", "bulksyncdest"],
            },
            "created_at": connection["created_at"],
            "updated_at": connection["updated_at"],
        }

    def _saved_view(self, connection: dict[str, Any]) -> dict[str, Any]:
        """``CreateConnectionResponseSchema`` (create, update)."""
        view = self._connection_view(connection)
        del view["created_at"], view["updated_at"]
        return {**view, "healthcheck_interval": connection["healthcheck_interval"], "auth_code": "", "auth_url": ""}

    def add_connection(self, name: str, type: str = "postgresql", **configuration: Any) -> str:
        """A connection set up outside the test (e.g. the source or destination of a bulk sync)."""
        cid = str(uuid.uuid4())
        self.connections[cid] = {
            "id": cid,
            "name": name,
            "type": type,
            "configuration": self._store_configuration(cid, configuration),
            "healthcheck_interval": "3h30m",
            "policies": [],
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        return cid

    def _connection(self, request: Request) -> dict[str, Any]:
        connection = self.connections.get(request.params["id"])
        if connection is None:
            raise HttpError(404, f"connection {request.params['id']} not found")
        return connection

    @route("GET", r"/api/connections")
    def list_connections(self, request: Request) -> tuple[int, Any]:
        return self.data([self._connection_view(c) for c in self.connections.values()])

    @route("POST", r"/api/connections")
    def create_connection(self, request: Request) -> tuple[int, Any]:
        body = body_of(request)
        self._check_connection(body, creating=True)
        cid = self.add_connection(body["name"], body["type"], **body["configuration"])
        connection = self.connections[cid]
        connection["healthcheck_interval"] = body.get("healthcheck_interval") or "3h30m"
        connection["policies"] = list(body.get("policies") or [])
        return self.data(self._saved_view(connection))

    @route("GET", r"/api/connections/(?P<id>[^/]+)")
    def get_connection(self, request: Request) -> tuple[int, Any]:
        return self.data(self._connection_view(self._connection(request)))

    @route("PUT", r"/api/connections/(?P<id>[^/]+)")
    def update_connection(self, request: Request) -> tuple[int, Any]:
        return self._replace_connection(request)

    @route("PATCH", r"/api/connections/(?P<id>[^/]+)")
    def patch_connection(self, request: Request) -> tuple[int, Any]:
        """The API reference documents ``PATCH`` for the same full-replacement update the SDK sends as ``PUT``."""
        return self._replace_connection(request)

    def _replace_connection(self, request: Request) -> tuple[int, Any]:
        """Full replacement: ``configuration`` and ``name`` required; what the configuration leaves out is gone."""
        connection = self._connection(request)
        body = body_of(request)
        self._check_connection(body, creating=False)
        if body.get("type") not in (None, connection["type"]):
            raise HttpError(422, f"type: a {connection['type']} connection cannot become {body['type']}")
        connection["configuration"] = self._store_configuration(connection["id"], dict(body["configuration"]))
        connection["name"] = body["name"]
        connection["healthcheck_interval"] = body.get("healthcheck_interval") or "3h30m"
        connection["policies"] = list(body.get("policies") or [])
        connection["updated_at"] = now_iso()
        return self.data(self._saved_view(connection))

    @route("DELETE", r"/api/connections/(?P<id>[^/]+)")
    def delete_connection(self, request: Request) -> tuple[int, Any]:
        cid = self._connection(request)["id"]
        users = [
            sid
            for sid, sync in self.bulk_syncs.items()
            if cid in (sync["source_connection_id"], sync["destination_connection_id"])
        ]
        if users and request.arg("force") != "true":
            raise HttpError(422, "connection in use by a bulk sync; pass force=true to delete it and its syncs")
        for sid in users:
            del self.bulk_syncs[sid]
        del self.connections[cid]
        self.secrets.pop(cid, None)
        return 204, None

    # -- bulk syncs --------------------------------------------------------------------------------------------
    @staticmethod
    def _schedule(value: Any, name: str, fields: tuple[str, ...]) -> dict[str, Any]:
        """A schedule as the API stores it; the values are strings (a JSON number is refused, as by the API)."""
        if not isinstance(value, dict):
            raise HttpError(400, f"{name}: expected an object")
        if value.get("frequency") not in FREQUENCIES:
            raise HttpError(400, f"{name}.frequency: must be one of {', '.join(sorted(FREQUENCIES))}")
        for key in SCHEDULE_FIELDS[1:]:
            if value.get(key) is not None and not isinstance(value[key], str):
                raise HttpError(400, f"{name}.{key}: expected a string")
        stamp = now_iso()
        kept = {key: value[key] for key in fields if value.get(key) is not None}
        return {"id": value.get("id") or str(uuid.uuid4()), **kept, "created_at": stamp, "updated_at": stamp}

    def _write_bulk(self, sid: str, body: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        """Create or fully replace a bulk sync from a request body (fields it omits take their defaults); 400 is
        the status the SDK declares for a refused create and update alike."""
        for name in BULK_REQUIRED:
            if body.get(name) in (None, ""):
                raise HttpError(400, f"{name}: required")
        if "default_schedule" not in body:
            raise HttpError(400, "default_schedule: required")
        for name in ("source_connection_id", "destination_connection_id"):
            if body[name] not in self.connections:
                raise HttpError(400, f"{name}: no connection {body[name]}")
        if not isinstance(body["destination_configuration"], dict):
            raise HttpError(400, "destination_configuration: expected an object")
        extra = body.get("additional_schedules") or []
        if not isinstance(extra, list):
            raise HttpError(400, "additional_schedules: expected a list")
        stamp = now_iso()
        return {
            "id": sid,
            **BULK_DEFAULTS,
            **{key: body[key] for key in BULK_DEFAULTS if key in body},
            **{key: body[key] for key in BULK_REQUIRED},
            "default_schedule": self._schedule(body["default_schedule"], "default_schedule", SCHEDULE_FIELDS),
            "additional_schedules": [
                self._schedule(item, f"additional_schedules[{index}]", ADDITIONAL_SCHEDULE_FIELDS)
                for index, item in enumerate(extra)
            ],
            "schemas": body.get("schemas") or (previous or {}).get("schemas") or [],
            "created_at": (previous or {}).get("created_at", stamp),
            "updated_at": stamp,
        }

    @staticmethod
    def _bulk_view(sync: dict[str, Any]) -> dict[str, Any]:
        """``BulkSyncResponse``: the schema selection is not part of it (``/schemas`` has it)."""
        return {key: value for key, value in sync.items() if key != "schemas"}

    def add_bulk_sync(self, name: str = "warehouse load", **fields: Any) -> str:
        """A bulk sync made outside the test (with its source and destination connections)."""
        sid = str(uuid.uuid4())
        body = {
            "name": name,
            "source_connection_id": self.add_connection(f"{name} source", hostname="src.example", password="pw-src"),
            "destination_connection_id": self.add_connection(f"{name} dest", "snowflake", account="acme"),
            "destination_configuration": {"schema": "raw"},
            "default_schedule": {"frequency": "manual"},
            "active": True,
            **fields,
        }
        self.bulk_syncs[sid] = self._write_bulk(sid, body, None)
        return sid

    def _bulk_sync(self, request: Request) -> dict[str, Any]:
        sync = self.bulk_syncs.get(request.params["id"])
        if sync is None:
            raise HttpError(404, f"bulk sync {request.params['id']} not found")
        return sync

    @route("GET", r"/api/bulk/syncs")
    def list_bulk_syncs(self, request: Request) -> tuple[int, Any]:
        active = request.arg("active")
        syncs = sorted(self.bulk_syncs.values(), key=lambda s: (s["updated_at"], s["id"]), reverse=True)
        if active in ("true", "false"):
            syncs = [s for s in syncs if s["active"] is (active == "true")]
        page = self.page([self._bulk_view(s) for s in syncs], request, "bulk_syncs")
        return 200, page

    @route("POST", r"/api/bulk/syncs")
    def create_bulk_sync(self, request: Request) -> tuple[int, Any]:
        sid = str(uuid.uuid4())
        self.bulk_syncs[sid] = self._write_bulk(sid, body_of(request), None)
        return self.data(self._bulk_view(self.bulk_syncs[sid]))

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)")
    def get_bulk_sync(self, request: Request) -> tuple[int, Any]:
        return self.data(self._bulk_view(self._bulk_sync(request)))

    @route("PUT", r"/api/bulk/syncs/(?P<id>[^/]+)")
    def update_bulk_sync(self, request: Request) -> tuple[int, Any]:
        """Full replacement: every field is written, an omitted one resets to its default."""
        sync = self._bulk_sync(request)
        self.bulk_syncs[sync["id"]] = self._write_bulk(sync["id"], body_of(request), sync)
        return self.data(self._bulk_view(self.bulk_syncs[sync["id"]]))

    @route("DELETE", r"/api/bulk/syncs/(?P<id>[^/]+)")
    def delete_bulk_sync(self, request: Request) -> tuple[int, Any]:
        del self.bulk_syncs[self._bulk_sync(request)["id"]]
        return 204, None

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/activate")
    def activate_bulk_sync(self, request: Request) -> tuple[int, Any]:
        """Deactivating also requests cancellation of the execution in progress."""
        sync = self._bulk_sync(request)
        active = body_of(request).get("active")
        if not isinstance(active, bool):
            raise HttpError(400, "active: required, true or false")
        sync["active"], sync["updated_at"] = active, now_iso()
        if not active:
            self._cancel_running(sync["id"])
        return self.data({"id": sync["id"], "active": active})

    # -- executions ----------------------------------------------------------------------------------------------
    def executions_of(self, sync_id: str) -> list[Execution]:
        return [execution for execution in self.executions.values() if execution.sync_id == sync_id]

    def _advance(self, execution: Execution) -> Execution:
        """Move an execution on as time passes (called whenever a client can observe it); a status is shown at
        least once before the next replaces it, so a poller sees ``created`` and ``canceling`` too."""
        if execution.seen:
            self._step(execution)
        execution.seen = True
        return execution

    def _step(self, execution: Execution) -> None:
        if execution.status == "created":
            execution.set_status("running")
            execution.started, execution.started_at = time.monotonic(), now_iso()
        elif execution.status == "canceling":
            execution.set_status("canceled")
            execution.completed_at = now_iso()
        elif execution.status == "running" and time.monotonic() - (execution.started or 0) >= self.run_seconds:
            execution.set_status(self.outcomes.pop(execution.sync_id, "completed"))
            execution.record_count = 1234 if execution.status == "completed" else 0
            execution.error_count = 0 if execution.status == "completed" else 3
            execution.completed_at = now_iso()

    def _running(self, sync_id: str) -> list[Execution]:
        return [e for e in self.executions_of(sync_id) if not self._advance(e).terminal]

    def _start(self, sync_id: str, kind: str, body: dict[str, Any]) -> Execution:
        running = self._running(sync_id)
        if running:
            raise HttpError(409, f"sync {sync_id} already has a running execution {running[0].id}")
        execution = Execution(str(uuid.uuid4()), sync_id, kind, dict(body))
        self.executions[execution.id] = execution
        return self._advance(execution)

    def _cancel_running(self, sync_id: str) -> bool:
        running = [e for e in self.executions_of(sync_id) if not e.terminal]
        for execution in running:
            execution.set_status("canceling")
        return bool(running)

    def _execution(self, request: Request, sync_param: str, exec_param: str, kind: str) -> Execution:
        execution = self.executions.get(request.params[exec_param])
        if execution is None or execution.sync_id != request.params[sync_param] or execution.kind != kind:
            raise HttpError(404, f"execution {request.params[exec_param]} not found")
        return self._advance(execution)

    def _listed(self, request: Request, sync_id: str, finished_param: str) -> list[Execution]:
        executions = [self._advance(e) for e in self.executions_of(sync_id)]
        if request.arg(finished_param) == "true":
            executions = [e for e in executions if e.terminal]
        return executions if request.arg("ascending") == "true" else executions[::-1]

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/executions")
    def start_bulk(self, request: Request) -> tuple[int, Any]:
        sid = self._bulk_sync(request)["id"]
        body = body_of(request)
        if "resync" in body:
            raise HttpError(400, "resync: no longer accepted at this API version; send resync_mode")
        if body.get("fetch_mode") not in (None, *FETCH_MODES):
            raise HttpError(400, f"fetch_mode: must be one of {', '.join(sorted(FETCH_MODES))}")
        if body.get("resync_mode") not in (None, *RESYNC_MODES):
            raise HttpError(400, f"resync_mode: must be one of {', '.join(sorted(RESYNC_MODES))}")
        if body.get("test") and body.get("resync_mode"):
            raise HttpError(400, "test: cannot be combined with resync_mode")
        schemas = body.get("schemas")
        if schemas is not None and not (isinstance(schemas, list) and all(isinstance(s, str) for s in schemas)):
            raise HttpError(400, "schemas: expected a list of schema ids")
        return self.data(self._start(sid, "bulk", body).bulk_view())

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/executions")
    def list_bulk_executions(self, request: Request) -> tuple[int, Any]:
        sid = self._bulk_sync(request)["id"]
        executions = self._listed(request, sid, "only_terminal")
        return 200, self.page([e.bulk_view() for e in executions], request, "bulk_executions")

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/executions/(?P<exec>[^/]+)")
    def get_bulk_execution(self, request: Request) -> tuple[int, Any]:
        return self.data(self._execution(request, "id", "exec", "bulk").bulk_view())

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/executions/(?P<exec>[^/]+)/cancel")
    def cancel_bulk_execution(self, request: Request) -> tuple[int, Any]:
        execution = self._execution(request, "id", "exec", "bulk")
        if execution.terminal:
            raise HttpError(404, f"execution {execution.id} is not running (it is {execution.status})")
        execution.set_status("canceling")
        return self.data({"message": f"cancellation of execution {execution.id} requested"})

    @route("POST", r"/api/bulk/syncs/(?P<id>[^/]+)/cancel")
    def cancel_bulk(self, request: Request) -> tuple[int, Any]:
        sid = self._bulk_sync(request)["id"]
        if not self._cancel_running(sid):
            raise HttpError(404, f"bulk sync {sid} has no running execution")
        return self.data({"message": "cancellation requested"})

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/status")
    def bulk_status(self, request: Request) -> tuple[int, Any]:
        sid = self._bulk_sync(request)["id"]
        runs = [self._advance(e) for e in self.executions_of(sid)]
        current = next((e.bulk_view() for e in reversed(runs) if not e.terminal), None)
        last = next((e.bulk_view() for e in reversed(runs) if e.terminal), None)
        return self.data({"current_execution": current, "last_execution": last, "next_execution_time": None})

    @route("GET", r"/api/bulk/syncs/(?P<id>[^/]+)/schemas")
    def bulk_schemas(self, request: Request) -> tuple[int, Any]:
        return self.data(self.schemas.get(self._bulk_sync(request)["id"], []))

    # -- model syncs ---------------------------------------------------------------------------------------------
    def _model_sync(self, request: Request, param: str = "id") -> str:
        if request.params[param] not in self.model_syncs:
            raise HttpError(404, f"sync {request.params[param]} not found")
        return request.params[param]

    @route("GET", r"/api/syncs/(?P<id>[^/]+)")
    def get_model_sync(self, request: Request) -> tuple[int, Any]:
        return self.data(self.model_syncs[self._model_sync(request)])

    @route("POST", r"/api/syncs/(?P<id>[^/]+)/executions")
    def start_model(self, request: Request) -> tuple[int, Any]:
        sid = self._model_sync(request)
        body = body_of(request)
        if body.get("identities") and body.get("source_identities"):
            raise HttpError(400, "identities: cannot be combined with source_identities")
        for name in ("resync", "test"):
            if body.get(name) is not None and not isinstance(body[name], bool):
                raise HttpError(400, f"{name}: expected true or false")
        execution = self._start(sid, "model", body)
        return self.data({"id": execution.id, "status": execution.status, "created_at": execution.created_at})

    @route("GET", r"/api/syncs/(?P<id>[^/]+)/executions")
    def list_model_executions(self, request: Request) -> tuple[int, Any]:
        sid = self._model_sync(request)
        executions = self._listed(request, sid, "only_completed")
        return 200, self.page([e.model_view() for e in executions], request, "model_executions")

    @route("GET", r"/api/syncs/(?P<sync_id>[^/]+)/executions/(?P<id>[^/]+)")
    def get_model_execution(self, request: Request) -> tuple[int, Any]:
        return self.data(self._execution(request, "sync_id", "id", "model").model_view())

    @route("POST", r"/api/syncs/(?P<sync_id>[^/]+)/executions/(?P<id>[^/]+)/cancel")
    def cancel_model_execution(self, request: Request) -> tuple[int, Any]:
        execution = self._execution(request, "sync_id", "id", "model")
        if execution.terminal:
            raise HttpError(400, f"execution {execution.id} is not running (it is {execution.status})")
        execution.set_status("canceling")
        return self.data({"message": f"cancellation of execution {execution.id} requested"})

    @route("POST", r"/api/syncs/(?P<id>[^/]+)/cancel")
    def cancel_model(self, request: Request) -> tuple[int, Any]:
        sid = self._model_sync(request)
        if not self._cancel_running(sid):
            raise HttpError(404, f"sync {sid} has no running execution")
        return self.data({"message": "cancellation requested"})

    @route("GET", r"/api/syncs/(?P<id>[^/]+)/status")
    def model_status(self, request: Request) -> tuple[int, Any]:
        runs = [self._advance(e) for e in self.executions_of(self._model_sync(request))]
        current = next((e.model_view() for e in reversed(runs) if not e.terminal), None)
        last = next((e.model_view() for e in reversed(runs) if e.terminal), None)
        return self.data({"current_execution": current, "last_execution": last, "next_execution_time": None})
