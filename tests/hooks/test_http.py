"""The shared HTTP layer against a real loopback server: retries, Retry-After, timeouts, error mapping, masking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_connectors.hooks.connection import base_url
from airflow_connectors.hooks.http import (
    ApiAuthError,
    ApiConflict,
    ApiNotFound,
    ApiRateLimited,
    ApiUnavailable,
    ApiValidationError,
    HttpApiHook,
)
from airflow_connectors.hooks.retry_policy import RetryPolicy, parse_retry_after
from tests.fakes.server import FakeApi, Request, dropped, rate_limited, route, server_error, slow

TOKEN = "http-layer-token-5d1c"


class EchoApi(FakeApi):
    name = "echo"

    def authorize(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    @route("GET", r"/things/(?P<id>[^/]+)")
    def get_thing(self, request: Request) -> tuple[int, Any]:
        if request.params["id"] == "missing":
            return 404, {"error": {"code": "not_found", "message": "no such thing"}}
        return 200, {"id": request.params["id"]}

    @route("POST", r"/things")
    def create_thing(self, request: Request) -> tuple[int, Any]:
        if not isinstance(request.body, dict) or "name" not in request.body:
            return 422, {"code": "invalid", "message": "name is required"}
        if request.body["name"] == "taken":
            return 409, {"key": "conflict", "message": "already exists"}
        return 201, {"id": "t1", **request.body}


class EchoHook(HttpApiHook):
    conn_type = "echo"
    default_conn_name = "echo_default"
    hook_name = "Echo"


EchoHook.__abstractmethods__ = frozenset()  # the HTTP layer is under test, not the connector interface


@pytest.fixture
def echo(airflow_connection: Callable[..., str]) -> Iterator[EchoApi]:
    api = EchoApi().start()
    airflow_connection("echo_default", conn_type="echo", host=api.url, password=TOKEN, extra={"read_timeout": 1})
    yield api
    api.stop()


FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=10)


def test_success_and_error_mapping(echo: EchoApi) -> None:
    hook = EchoHook(retry=FAST)
    assert hook._call("GET", "/things/a") == {"id": "a"}
    assert hook._call("POST", "/things", json={"name": "n"}) == {"id": "t1", "name": "n"}
    with pytest.raises(ApiNotFound) as missing:
        hook._call("GET", "/things/missing")
    assert (missing.value.status, missing.value.code, missing.value.api_message) == (404, "not_found", "no such thing")
    assert missing.value.request_id and missing.value.request_id in str(missing.value)
    with pytest.raises(ApiValidationError, match="name is required"):
        hook._call("POST", "/things", json={})
    with pytest.raises(ApiConflict, match="already exists"):
        hook._call("POST", "/things", json={"name": "taken"})
    assert len(echo.requests_to("POST", "/things")) == 3  # client errors are not retried


def test_bad_credentials_give_a_clear_error_without_the_secret(echo: EchoApi, airflow_connection) -> None:
    airflow_connection("echo_default", conn_type="echo", host=echo.url, password="wrong-secret-value")
    with pytest.raises(ApiAuthError) as caught:
        EchoHook(retry=FAST)._call("GET", "/things/a")
    assert caught.value.status == 401 and "wrong-secret-value" not in str(caught.value)


def test_429_waits_for_retry_after(echo: EchoApi) -> None:
    echo.inject(rate_limited(retry_after=1), times=2)
    assert EchoHook(retry=FAST)._call("GET", "/things/a") == {"id": "a"}
    times = [request.received_at for request in echo.requests_to("GET", "/things/a")]
    assert len(times) == 3
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 1.0


def test_5xx_and_dropped_connections_are_retried_with_backoff(echo: EchoApi) -> None:
    echo.inject(server_error(503))
    echo.inject(dropped())
    echo.inject(server_error(502))
    assert EchoHook(retry=FAST)._call("GET", "/things/b") == {"id": "b"}
    assert len(echo.requests_to("GET", "/things/b")) == 4


def test_retry_budget_ends_with_the_last_error(echo: EchoApi) -> None:
    echo.inject(rate_limited(retry_after=0), times=10, path="/things/c")
    with pytest.raises(ApiRateLimited):
        EchoHook(retry=RetryPolicy(max_attempts=3, backoff_base=0.01))._call("GET", "/things/c")
    assert len(echo.requests_to("GET", "/things/c")) == 3
    echo.inject(server_error(500), times=10, path="/things/d")
    with pytest.raises(ApiUnavailable):
        EchoHook(retry=RetryPolicy(max_attempts=2, backoff_base=0.01))._call("GET", "/things/d")


def test_read_timeout(echo: EchoApi) -> None:
    echo.inject(slow(3), times=5)
    started = time.monotonic()
    with pytest.raises(ApiUnavailable, match="no response within 1s"):
        EchoHook(retry=RetryPolicy(max_attempts=2, backoff_base=0.01))._call("GET", "/things/e")
    assert time.monotonic() - started < 2.9 * 2  # each attempt gave up after the 1 s read timeout


def test_a_post_that_may_have_reached_the_server_is_not_repeated(echo: EchoApi) -> None:
    echo.inject(dropped())
    with pytest.raises(ApiUnavailable):
        EchoHook(retry=FAST)._call("POST", "/things", json={"name": "once"})
    assert len(echo.requests_to("POST", "/things")) == 1
    echo.inject(dropped())
    EchoHook(retry=FAST)._call("POST", "/things", json={"name": "keyed"}, idempotent=True)
    assert len(echo.requests_to("POST", "/things")) == 3


def test_async_twin_retries_without_blocking_the_loop(echo: EchoApi) -> None:
    echo.inject(rate_limited(retry_after=1))
    echo.inject(slow(0.5))

    async def scenario() -> tuple[Any, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.05)

        task = asyncio.create_task(ticker())
        result = await EchoHook(retry=FAST)._acall("GET", "/things/f")
        done.set()
        await task
        return result, ticks

    result, ticks = asyncio.run(scenario())
    assert result == {"id": "f"}
    assert ticks >= 20  # ~1.5 s of waiting, during which the loop kept running other tasks


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.example.com"),
        ("", None, "https://api.example.com"),
        ("cdc.internal", 8042, "https://cdc.internal:8042"),
        ("http://127.0.0.1:8042/", None, "http://127.0.0.1:8042"),
        ("https://proxy.example/fivetran/", None, "https://proxy.example/fivetran"),
    ],
)
def test_base_url(host: str | None, port: int | None, expected: str) -> None:
    assert base_url(host, port, "https://api.example.com/") == expected


def test_base_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="host"):
        base_url("ftp://x", None, "")


def test_retry_after_parsing() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_backoff_grows_with_jitter_and_respects_the_budget() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=8, jitter=0.5, max_attempts=10, budget_seconds=20)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 8]):
        delays = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays) and len(set(delays)) > 1
    assert policy.allows(0, 0, 5) and not policy.allows(0, 18, 5) and not policy.allows(9, 0, 1)
    assert not policy.allows(0, 0, 601)  # an absurd Retry-After is not waited for
