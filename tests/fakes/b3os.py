"""A fake B3OS connectors API: typed credential records validated against their type's ``dataSchema``.

Envelope ``{"code", "data", "message", "requestId"}`` for answers and errors alike; Bearer token; ``data`` is
write-only: answers carry ``maskedData`` (secret fields, those the schema marks ``format: password``, as "****").
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jsonschema

from tests.fakes.server import FakeApi, Request, route

CONNECTOR_TYPES: dict[str, dict[str, Any]] = {
    "postgres": {
        "type": "postgres",
        "provider": "postgresql",
        "tags": ["database"],
        "dataSchema": {
            "type": "object",
            "required": ["host", "user", "password"],
            "properties": {
                "host": {"type": "string", "minLength": 1},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "user": {"type": "string"},
                "password": {"type": "string", "format": "password"},
            },
            "additionalProperties": False,
        },
    },
    "slack": {
        "type": "slack",
        "provider": "slack",
        "tags": ["messaging"],
        "dataSchema": {
            "type": "object",
            "required": ["token"],
            "properties": {"token": {"type": "string", "format": "password"}, "channel": {"type": "string"}},
        },
    },
}


class FakeB3os(FakeApi):
    name = "b3os"
    error_body = staticmethod(
        lambda status, message: {"code": status, "message": message, "requestId": f"req-{uuid.uuid4().hex[:8]}"}
    )

    def __init__(self, token: str = "b3os-token-51e0") -> None:
        super().__init__()
        self.token = token
        self.connectors: dict[str, dict[str, Any]] = {}

    def authorize(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    @staticmethod
    def ok(data: Any) -> tuple[int, Any]:
        return 200, {"code": 200, "data": data, "message": "success", "requestId": f"req-{uuid.uuid4().hex[:8]}"}

    def error(self, status: int, message: str) -> tuple[int, Any]:
        return status, self.error_body(status, message)

    def _view(self, connector: dict[str, Any]) -> dict[str, Any]:
        schema = CONNECTOR_TYPES[connector["type"]]["dataSchema"]["properties"]
        masked = {
            key: ("****" if schema.get(key, {}).get("format") == "password" else value)
            for key, value in connector["_data"].items()
        }
        return {**{k: v for k, v in connector.items() if not k.startswith("_")}, "maskedData": masked}

    def _check_data(self, type_name: str, data: Any) -> str | None:
        try:
            jsonschema.validate(data, CONNECTOR_TYPES[type_name]["dataSchema"])
        except jsonschema.ValidationError as exc:
            return f"data{''.join(f'.{p}' for p in exc.path)}: {exc.message}"
        return None

    @route("GET", r"/v1/connector-types")
    def types(self, request: Request) -> tuple[int, Any]:
        return self.ok(list(CONNECTOR_TYPES.values()))

    @route("GET", r"/v1/connector-types/(?P<type>[^/]+)")
    def type(self, request: Request) -> tuple[int, Any]:
        found = CONNECTOR_TYPES.get(request.params["type"])
        return self.ok(found) if found else self.error(404, "connector type not found")

    @route("POST", r"/v1/connectors")
    def create(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("type") not in CONNECTOR_TYPES:
            return self.error(400, f"type: unknown connector type {body.get('type')!r}")
        if not body.get("name"):
            return self.error(400, "name is required")
        if "maskedData" in body:
            return self.error(400, "maskedData is computed and cannot be written")
        if (problem := self._check_data(body["type"], body.get("data", {}))) is not None:
            return self.error(400, problem)
        cid = str(uuid.uuid4())
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.connectors[cid] = {
            "id": cid,
            "name": body["name"],
            "type": body["type"],
            "description": body.get("description", ""),
            "provider": CONNECTOR_TYPES[body["type"]]["provider"],
            "organizationId": "org-1",
            "createdAt": now,
            "createdBy": "api",
            "updatedAt": now,
            "updatedBy": "api",
            "_data": dict(body.get("data", {})),
        }
        return self.ok(self._view(self.connectors[cid]))

    @route("GET", r"/v1/connectors/(?P<id>[^/]+)")
    def get(self, request: Request) -> tuple[int, Any]:
        connector = self.connectors.get(request.params["id"])
        return self.ok(self._view(connector)) if connector else self.error(404, "connector not found")

    @route("PUT", r"/v1/connectors/(?P<id>[^/]+)")
    def update(self, request: Request) -> tuple[int, Any]:
        connector = self.connectors.get(request.params["id"])
        if connector is None:
            return self.error(404, "connector not found")
        body = request.body if isinstance(request.body, dict) else {}
        unknown = set(body) - {"data", "description", "name"}
        if unknown:
            return self.error(400, f"{sorted(unknown)[0]}: not an updatable field")
        if "data" in body:
            if (problem := self._check_data(connector["type"], body["data"])) is not None:
                return self.error(400, problem)
            if "****" in map(str, body["data"].values()):
                return self.error(400, "data: a masked value was sent back as data")
            connector["_data"] = dict(body["data"])
        for key in ("name", "description"):
            if key in body:
                connector[key] = body[key]
        connector["updatedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self.ok(self._view(connector))
