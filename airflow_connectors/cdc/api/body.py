"""Request bodies: size limit (413), content type (415), JSON syntax (400), parsed before any model sees them.

Handlers take the raw JSON so that merge patches keep the difference between an absent field and ``null``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_connectors.cdc.api.errors import ApiProblem, error_response

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
MAX_DEPTH = 32  # deeper than any connector document: a deeper body is an attack, not a connector


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, counted as they arrive (a lying or absent Content-Length too)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "body_too_large", f"request bodies are limited to {self.limit} bytes")
        await response(scope, receive, send)


def _storable(text: str) -> bool:
    """No NUL and no lone surrogate (valid JSON escapes, but neither PostgreSQL nor UTF-8 can hold them)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_shape(value: Any) -> None:
    """Refuse bodies nested deeper than :data:`MAX_DEPTH`, NUL characters and lone surrogates (unstorable)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiProblem(422, "too_deep", f"the request body nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                if not _storable(key):
                    raise ApiProblem(
                        422, "invalid_field", "field names cannot contain NUL characters or lone surrogates"
                    )
                stack.append((child, where, depth + 1))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{path}.{index}" if path else str(index), depth + 1) for index, child in enumerate(item)
            )
        elif isinstance(item, str) and not _storable(item):
            raise ApiProblem(
                422,
                "invalid_field",
                f"{path or 'body'}: NUL characters and lone surrogates (\\ud800-\\udfff) are not allowed",
                field=path or None,
            )


async def read_json(request: Request, *content_types: str) -> Any:
    """The parsed body; 415 unless its media type is one of ``content_types``."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in content_types:
        raise ApiProblem(
            415,
            "unsupported_media_type",
            f"Content-Type must be {' or '.join(content_types)} (got {media_type or 'none'})",
        )
    raw = await request.body()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiProblem(400, "malformed_json", "the request body is not valid JSON") from None
    _check_shape(value)
    return value


async def json_body(request: Request) -> Any:
    return await read_json(request, JSON)


async def optional_json_body(request: Request) -> Any:
    """For endpoints whose body may be omitted (run options, validation by connector id)."""
    if not await request.body():
        return None
    return await read_json(request, JSON)


async def merge_patch_body(request: Request) -> Any:
    return await read_json(request, MERGE_PATCH)


# Models documented as request bodies (the handlers read raw JSON, so FastAPI does not see them itself).
BODY_MODELS: dict[str, type[BaseModel]] = {}


def documented_body(
    model: type[BaseModel], *, content_type: str = JSON, required: bool = True, description: str | None = None
) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the request body; its schema is added to the components."""
    BODY_MODELS[model.__name__] = model
    body: dict[str, Any] = {
        "required": required,
        "content": {content_type: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


def add_body_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(def_name, definition)
        schemas.setdefault(name, schema)
    return openapi
