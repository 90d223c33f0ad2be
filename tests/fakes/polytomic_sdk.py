"""The official Polytomic SDK (PyPI ``polytomic``) as the judge of the wire format, for tests of the fake and of
our hook: a client pointed at the fake, a check that a response carries only fields the SDK's types declare, and
the body fields each SDK call sends (what the real API takes)."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import httpx
import pydantic
from polytomic import Polytomic
from polytomic.bulk_sync.raw_client import RawBulkSyncClient
from polytomic.connections.raw_client import RawConnectionsClient
from polytomic.model_sync.raw_client import RawModelSyncClient

from tests.fakes.polytomic import FakePolytomic
from tests.fakes.server import Request

# Arguments of an SDK method that are not fields of the request body.
NOT_BODY = frozenset({"self", "id", "sync_id", "exec_id", "idempotency_key", "request_options"})


def sdk_client(fake: FakePolytomic, *, max_retries: int = 0, deployment_key: bool = False) -> Polytomic:
    """An SDK client for the fake (API key, or on-premises deployment key as HTTP Basic)."""
    if deployment_key:
        http = httpx.Client(auth=(fake.deployment_key, ""), timeout=10)
        return Polytomic(base_url=fake.url, httpx_client=http, max_retries=max_retries)
    return Polytomic(base_url=fake.url, token=fake.api_key, timeout=10, max_retries=max_retries)


def undeclared(value: Any, path: str = "") -> list[str]:
    """Paths of the fields in a parsed SDK response that its types do not declare (the SDK keeps them as extras):
    a fake answering with a field name the real API does not use shows up here."""
    if isinstance(value, pydantic.BaseModel):
        found = [f"{path}.{key}".lstrip(".") for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list | tuple):
        return [hit for index, item in enumerate(value) for hit in undeclared(item, f"{path}[{index}]")]
    return []


def strict(parsed: Any, documented: frozenset[str] = frozenset()) -> Any:
    """``parsed`` after asserting that it has no undeclared field (but the ``documented`` ones: the API reference
    describes ``pagination`` on bulk sync lists, which the SDK's type lacks)."""
    extra = [path for path in undeclared(parsed) if path not in documented]
    assert not extra, f"fields the SDK does not know: {extra}"
    return parsed


def body_fields(method: Callable[..., Any]) -> frozenset[str]:
    """The JSON body fields an SDK call sends (its keyword arguments, less path ids and request options)."""
    return frozenset(inspect.signature(method).parameters) - NOT_BODY


def required_fields(method: Callable[..., Any]) -> frozenset[str]:
    parameters = inspect.signature(method).parameters.values()
    return frozenset(p.name for p in parameters if p.default is inspect.Parameter.empty) - NOT_BODY


# (method, path regex) of a request -> the SDK call that makes it.
SDK_CALLS: dict[tuple[str, str], Callable[..., Any]] = {
    ("POST", r"/api/connections"): RawConnectionsClient.create,
    ("PUT", r"/api/connections/[^/]+"): RawConnectionsClient.update,
    ("PATCH", r"/api/connections/[^/]+"): RawConnectionsClient.update,  # the API reference's verb, same body
    ("POST", r"/api/bulk/syncs"): RawBulkSyncClient.create,
    ("PUT", r"/api/bulk/syncs/[^/]+"): RawBulkSyncClient.update,
    ("POST", r"/api/bulk/syncs/[^/]+/activate"): RawBulkSyncClient.activate,
    ("POST", r"/api/bulk/syncs/[^/]+/executions"): RawBulkSyncClient.start,
    ("POST", r"/api/syncs/[^/]+/executions"): RawModelSyncClient.start,
}


def request_problems(request: Request) -> list[str]:
    """How a request to the fake differs from what the SDK would send for the same call: body fields the SDK does
    not send (e.g. read-only fields echoed back), required ones missing, values its request types refuse or that
    carry undeclared nested fields. Empty for requests of calls not in :data:`SDK_CALLS`."""
    call = next((c for (m, p), c in SDK_CALLS.items() if m == request.method and re.fullmatch(p, request.path)), None)
    if call is None:
        return []
    where = f"{request.method} {request.path}"
    body = request.body if isinstance(request.body, dict) else {}
    hints = typing.get_type_hints(call)
    problems = [f"{where}: {name} is not a field of the request" for name in body if name not in body_fields(call)]
    problems += [f"{where}: {name} is required" for name in sorted(required_fields(call) - body.keys())]
    for name, value in body.items():
        if name not in hints or name not in body_fields(call):
            continue
        try:
            parsed = pydantic.TypeAdapter(hints[name]).validate_python(value)
        except pydantic.ValidationError as exc:
            problems.append(f"{where}: {name}: {exc.errors()[0]['msg']}")
        else:
            problems += [f"{where}: {name}.{path} is not a field of the request" for path in undeclared(parsed)]
    return problems
