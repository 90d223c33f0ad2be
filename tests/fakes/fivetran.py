"""A fake Fivetran REST API (v1 connections) that follows the published contract and moves syncs over time.

Envelopes ``{"code", "message", "data"}``; 201 on create; cursor paging; HTTP Basic auth (401 otherwise). When
Fivetran's OpenAPI document is found (``tests/fakes/fivetran_spec.py`` says where), every request body is validated
against it before any handler runs (a violation is answered 400 and recorded in ``failures``, so the test whose
code sent it fails) and every connection the fake returns is too: neither side can drift from the real API.

Syncs: ``/sync`` puts a connection in ``syncing``; the first status read after ``sync_seconds`` finishes it
(``succeeded_at`` or ``failed_at`` set, per ``outcomes``). ``outcomes[id] = "rescheduled"`` makes the next sync
wait for source quota: ``sync_state = "rescheduled"`` with ``rescheduled_for``; once that time has passed an
``auto`` connection syncs by itself, a ``manual`` one stays rescheduled until it is triggered again.
"""

from __future__ import annotations

import base64
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.fivetran_spec import load_spec
from tests.fakes.server import FakeApi, Request, route

ALLOWED_FREQUENCIES = (1, 5, 15, 30, 60, 120, 180, 360, 480, 720, 1440)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class FakeFivetran(FakeApi):
    name = "fivetran"
    error_body = staticmethod(lambda status, message: {"code": f"Http{status}", "message": message})

    def __init__(self, api_key: str = "fivetran-key", api_secret: str = "fivetran-secret-9e1f") -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.connections: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, str] = {}  # connection id -> "succeeded" | "failed" | "rescheduled"
        self.sync_seconds = 0.3
        # connection id -> status reads its next sync is still running for, instead of ``sync_seconds``: for tests
        # that must see a sync running whatever the machine's speed.
        self.sync_reads: dict[str, int] = {}
        self.reschedule_seconds = 1.0
        self._finish_at: dict[str, datetime] = {}
        self._ids = itertools.count(1)
        self.spec = load_spec()
        self.sync_requests: list[tuple[str, dict[str, Any]]] = []  # (connection id, body) of /sync, /resync...
        # Source tables of a connection: {source schema: {table: enabled}}; a connection without one answers 404
        # to its schema config (as connectors without a configurable schema do).
        self.source_tables: dict[str, dict[str, dict[str, bool]]] = {}
        self.destinations: dict[str, dict[str, Any]] = {}  # group id -> {"service", "config"}

    # -- helpers -----------------------------------------------------------------------------------------------
    def authorize(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    @staticmethod
    def ok(data: Any = None, message: str | None = None, status: int = 200) -> tuple[int, Any]:
        body: dict[str, Any] = {"code": "Success"}
        if message:
            body["message"] = message
        if data is not None:
            body["data"] = data
        return status, body

    @staticmethod
    def error(status: int, code: str, message: str) -> tuple[int, Any]:
        return status, {"code": code, "message": message}

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        """Every request body is checked against the OpenAPI before any handler sees it: a violation is answered
        400 (as the API would) and recorded in ``failures`` (the fixture fails the test that sent it)."""
        if self.spec is not None and request.body is not None and self.authorize(request):
            errors = self.spec.request_errors(request.method, request.path, request.body)
            if errors:
                message = f"{request.method} {request.path} request violates Fivetran's OpenAPI schema {errors[0]}"
                self.failures.append(message)
                return 400, {"code": "InvalidInput", "message": message}, {}
        return super()._answer(request)

    def _view(self, connection: dict[str, Any]) -> dict[str, Any]:
        self._advance(connection)
        view = {key: value for key, value in connection.items() if not key.startswith("_")}
        if self.spec is not None and (errors := self.spec.response_errors("ConnectorResponseV1", view)):
            raise AssertionError(f"connection response violates Fivetran's OpenAPI schema {errors[0]}")
        return view

    def _advance(self, connection: dict[str, Any]) -> None:
        """Move the connection's sync along: time passes between status reads."""
        status, now, cid = connection["status"], _now(), connection["id"]
        if status["sync_state"] == "rescheduled" and status.get("rescheduled_for"):
            # A manual connection stays rescheduled (the time has passed) until someone triggers it again.
            due = datetime.fromisoformat(status["rescheduled_for"].replace("Z", "+00:00"))
            if now >= due and connection["schedule_type"] == "auto":
                status["rescheduled_for"] = None
                self._start(connection)
        if status["sync_state"] == "syncing" and self._sync_over(cid, now):
            outcome = self.outcomes.pop(cid, "succeeded")
            if outcome == "rescheduled":
                status["sync_state"] = "rescheduled"
                status["rescheduled_for"] = _iso(now + timedelta(seconds=self.reschedule_seconds))
                return
            connection["succeeded_at" if outcome == "succeeded" else "failed_at"] = _iso(now)
            status["sync_state"] = "scheduled"
            status["is_historical_sync"] = False

    def _sync_over(self, cid: str, now: datetime) -> bool:
        if cid not in self.sync_reads:
            return now >= self._finish_at.get(cid, now)
        self.sync_reads[cid] -= 1
        if self.sync_reads[cid] >= 0:
            return False
        del self.sync_reads[cid]
        return True

    def _start(self, connection: dict[str, Any]) -> None:
        connection["status"]["sync_state"] = "syncing"
        self._finish_at[connection["id"]] = _now() + timedelta(seconds=self.sync_seconds)

    def _get(self, request: Request) -> dict[str, Any] | None:
        return self.connections.get(request.params["id"])

    def _missing(self, request: Request) -> tuple[int, Any]:
        return self.error(404, "NotFound_Connection", f"Connection with id '{request.params['id']}' doesn't exist")

    # -- routes ------------------------------------------------------------------------------------------------
    @route("POST", r"/v1/connections")
    def create(self, request: Request) -> tuple[int, Any]:
        body = request.body or {}
        for field in ("group_id", "service"):
            if not body.get(field):
                return self.error(400, "InvalidInput", f"Missing required field: {field}")
        schema = (body.get("config") or {}).get("schema") or f"{body['service']}_{next(self._ids)}"
        if any(c["schema"] == schema and c["group_id"] == body["group_id"] for c in self.connections.values()):
            return self.error(409, "Conflict", f"Connection with schema '{schema}' already exists in the group")
        cid = f"conn_{next(self._ids)}"
        self.connections[cid] = {
            "id": cid,
            "group_id": body["group_id"],
            "service": body["service"],
            "service_version": 1,
            "schema": schema,
            "paused": bool(body.get("paused", False)),
            "pause_after_trial": bool(body.get("pause_after_trial", False)),
            "sync_frequency": int(body.get("sync_frequency", 360)),
            "schedule_type": body.get("schedule_type", "auto"),
            "data_delay_sensitivity": body.get("data_delay_sensitivity", "NORMAL"),
            "created_at": _iso(_now()),
            "succeeded_at": None,
            "failed_at": None,
            "status": {
                "setup_state": "connected",
                "sync_state": "paused" if body.get("paused") else "scheduled",
                "update_state": "on_schedule",
                "is_historical_sync": True,
                "tasks": [],
                "warnings": [],
            },
            "config": body.get("config", {}),
        }
        if "daily_sync_time" in body:
            self.connections[cid]["daily_sync_time"] = body["daily_sync_time"]
        return self.ok(self._view(self.connections[cid]), "Connection has been created", status=201)

    @route("GET", r"/v1/connections")
    def list(self, request: Request) -> tuple[int, Any]:
        try:
            limit = int(request.arg("limit", "100") or 100)
        except ValueError:
            return self.error(400, "InvalidInput", "limit must be an integer")
        if not 1 <= limit <= 1000:
            return self.error(400, "InvalidInput", "limit must be between 1 and 1000")
        items = sorted(self.connections.values(), key=lambda c: int(c["id"].split("_")[1]))
        if group := request.arg("group_id"):
            items = [c for c in items if c["group_id"] == group]
        cursor = request.arg("cursor")
        if cursor:
            if not re.fullmatch(r"after:conn_\d+", cursor):
                return self.error(400, "InvalidInput", "invalid cursor")
            after = int(cursor.split("_")[1])
            items = [c for c in items if int(c["id"].split("_")[1]) > after]
        page = items[:limit]
        next_cursor = f"after:{page[-1]['id']}" if len(items) > limit else None
        return self.ok({"items": [self._view(c) for c in page], "next_cursor": next_cursor})

    @route("GET", r"/v1/connections/(?P<id>[^/]+)")
    def get(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        return self.ok(self._view(connection)) if connection else self._missing(request)

    @route("PATCH", r"/v1/connections/(?P<id>[^/]+)")
    def update(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        body = dict(request.body or {})
        frequency = body.get("sync_frequency", connection["sync_frequency"])
        if "daily_sync_time" in body and frequency != 1440:
            return self.error(400, "InvalidInput", "daily_sync_time can only be set with sync_frequency 1440")
        for key in (
            "paused",
            "sync_frequency",
            "daily_sync_time",
            "schedule_type",
            "pause_after_trial",
            "data_delay_sensitivity",
            "data_delay_threshold",
            "networking_method",
            "config",
        ):
            if key in body:
                connection[key] = body[key]
        if "paused" in body:
            connection["status"]["sync_state"] = "paused" if body["paused"] else "scheduled"
        if body.get("is_historical_sync"):
            connection["status"]["is_historical_sync"] = True
            self._start(connection)
        return self.ok(self._view(connection), "Connection has been updated")

    @route("DELETE", r"/v1/connections/(?P<id>[^/]+)")
    def delete(self, request: Request) -> tuple[int, Any]:
        if self.connections.pop(request.params["id"], None) is None:
            return self._missing(request)
        return self.ok(message="Connection has been deleted")

    @route("POST", r"/v1/connections/(?P<id>[^/]+)/sync")
    def sync(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        self._advance(connection)
        if connection["paused"]:
            return self.error(409, "Conflict", "Connection is paused")
        force = bool((request.body or {}).get("force"))
        self.sync_requests.append((connection["id"], {"kind": "sync", "force": force}))
        if connection["status"]["sync_state"] != "syncing" or force:
            connection["status"]["rescheduled_for"] = None
            self._start(connection)
        return self.ok(message="Sync has been successfully triggered for connection with id " + connection["id"])

    @route("POST", r"/v1/connections/(?P<id>[^/]+)/resync")
    def resync(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        scope = (request.body or {}).get("scope")
        if scope is not None and not scope:
            return self.error(400, "InvalidInput", "scope must not be empty")
        self.sync_requests.append((connection["id"], {"kind": "resync", "scope": scope}))
        connection["status"]["is_historical_sync"] = True
        self._start(connection)
        return self.ok(message="Re-sync has been triggered successfully")

    @route("POST", r"/v1/connections/(?P<id>[^/]+)/schemas/tables/resync")
    def resync_tables(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        body = request.body
        if not isinstance(body, dict) or not body or not all(isinstance(v, list) and v for v in body.values()):
            return self.error(400, "InvalidInput", "body must map schema names to non-empty table lists")
        self.sync_requests.append((connection["id"], {"kind": "resync_tables", "tables": body}))
        self._start(connection)
        return self.ok(message="Re-sync has been triggered successfully")

    @route("POST", r"/v1/connections/(?P<id>[^/]+)/test")
    def setup_tests(self, request: Request) -> tuple[int, Any]:
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        view = self._view(connection)
        view["setup_tests"] = [{"title": "Connecting to the source", "status": "PASSED", "message": ""}]
        return self.ok(view, "Setup tests have been completed")

    @route("GET", r"/v1/connections/(?P<id>[^/]+)/schemas")
    def schema_config(self, request: Request) -> tuple[int, Any]:
        """Fivetran's naming for database sources: schema ``<connection schema>_<source schema>``, tables as is."""
        connection = self._get(request)
        if connection is None:
            return self._missing(request)
        if connection["id"] not in self.source_tables:
            return self.error(404, "NotFound_SchemaConfig", "Schema config for the connection doesn't exist")
        schemas = {}
        for schema, tables in self.source_tables[connection["id"]].items():
            schemas[schema] = {
                "name_in_destination": f"{connection['schema']}_{schema}".lower(),
                "enabled": any(tables.values()),
                "tables": {
                    table: {
                        "name_in_destination": table.lower(),
                        "enabled": enabled,
                        "sync_mode": "SOFT_DELETE",
                        "columns": {},
                        "enabled_patch_settings": {"allowed": True},
                        "supports_columns_config": True,
                        "supports_history_mode": True,
                    }
                    for table, enabled in tables.items()
                },
            }
        config = {"enable_new_by_default": True, "schema_change_handling": "ALLOW_ALL", "schemas": schemas}
        if self.spec is not None and (errors := self.spec.response_errors("StandardConfigResponse", config)):
            raise AssertionError(f"schema config response violates Fivetran's OpenAPI schema {errors[0]}")
        return self.ok(config)

    @route("GET", r"/v1/destinations/(?P<id>[^/]+)")
    def destination(self, request: Request) -> tuple[int, Any]:
        group_id = request.params["id"]
        if group_id not in self.destinations:
            return self.error(404, "NotFound_Destination", f"Destination with id '{group_id}' doesn't exist")
        view = {
            "id": group_id,
            "group_id": group_id,
            "region": "GCP_US_EAST4",
            "time_zone_offset": "0",
            "setup_status": "CONNECTED",
            **self.destinations[group_id],
        }
        if self.spec is not None and (errors := self.spec.response_errors("DestinationExtendedResponse", view)):
            raise AssertionError(f"destination response violates Fivetran's OpenAPI schema {errors[0]}")
        return self.ok(view)
