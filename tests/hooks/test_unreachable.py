"""An unreachable API says which host and why (refused, timeout, TLS, DNS); ``max_retries: 0`` turns retries off."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from airflow_connectors.hooks.http import ApiUnavailable
from tests.fakes.server import server_error
from tests.hooks.test_http import TOKEN, EchoApi, EchoHook, echo  # noqa: F401  (echo: fixture)

QUICK = {"max_retries": 0, "connect_timeout": 0.5, "read_timeout": 0.5}


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connecting times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))
    yield port
    filler.close()
    listener.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield int(listener.getsockname()[1])
    listener.close()


def hook_for_host(airflow_connection: Callable[..., str], host: str) -> EchoHook:
    airflow_connection("echo_default", conn_type="echo", host=host, password=TOKEN, extra=QUICK)
    return EchoHook()


def failure(hook: EchoHook) -> str:
    with pytest.raises(ApiUnavailable) as caught:
        hook._call("GET", "/things/a")
    with pytest.raises(ApiUnavailable) as caught_async:
        asyncio.run(hook._acall("GET", "/things/a"))
    assert str(caught_async.value) == str(caught.value)  # the async twin says the same
    return str(caught.value)


def test_refused(airflow_connection: Callable[..., str], closed_port: int) -> None:
    message = failure(hook_for_host(airflow_connection, f"http://127.0.0.1:{closed_port}"))
    assert f"no response from 127.0.0.1:{closed_port}: connection refused" in message


def test_connect_timeout(airflow_connection: Callable[..., str], full_backlog: int) -> None:
    message = failure(hook_for_host(airflow_connection, f"http://127.0.0.1:{full_backlog}"))
    assert f"127.0.0.1:{full_backlog}: timed out connecting after 0.5s (extra connect_timeout)" in message


def test_read_timeout(airflow_connection: Callable[..., str], silent_server: int) -> None:
    message = failure(hook_for_host(airflow_connection, f"http://127.0.0.1:{silent_server}"))
    assert f"127.0.0.1:{silent_server}: connected, but no response within 0.5s" in message


def test_tls(airflow_connection: Callable[..., str], echo: EchoApi) -> None:  # noqa: F811
    port = echo.url.rsplit(":", 1)[1]
    message = failure(hook_for_host(airflow_connection, f"https://127.0.0.1:{port}"))  # TLS to a plain HTTP server
    assert f"no response from 127.0.0.1:{port}: TLS handshake failed" in message


def test_dns(airflow_connection: Callable[..., str]) -> None:
    message = failure(hook_for_host(airflow_connection, "https://no-such-host.invalid"))
    assert "no response from no-such-host.invalid:443: DNS lookup failed" in message


def test_max_retries_zero_turns_retries_off(airflow_connection: Callable[..., str], echo: EchoApi) -> None:  # noqa: F811
    airflow_connection("echo_default", conn_type="echo", host=echo.url, password=TOKEN, extra={"max_retries": 0})
    echo.inject(server_error(503), times=3)
    with pytest.raises(ApiUnavailable, match="503"):
        EchoHook()._call("GET", "/things/z")
    assert len(echo.requests_to("GET", "/things/z")) == 1
    airflow_connection("echo_default", conn_type="echo", host=echo.url, password=TOKEN, extra={"max_retries": "2"})
    assert EchoHook()._call("GET", "/things/z") == {"id": "z"}  # two 503s retried
    assert len(echo.requests_to("GET", "/things/z")) == 4


@pytest.mark.parametrize("value", [-1, 1.5, "many", True])
def test_max_retries_must_be_a_whole_number(airflow_connection: Callable[..., str], value: object) -> None:
    airflow_connection(
        "echo_default", conn_type="echo", host="http://127.0.0.1:1", password=TOKEN, extra={"max_retries": value}
    )
    with pytest.raises(ValueError, match=r"^extra\.max_retries: expected a whole number >= 0"):
        EchoHook()._call("GET", "/things/a")


@pytest.mark.slow
def test_airflow_connections_test_names_the_host_and_the_cause(airflow_env, closed_port: int) -> None:  # type: ignore[no-untyped-def]
    conn = {"conn_type": "fivetran_api", "host": f"http://127.0.0.1:{closed_port}", "login": "k", "password": "s"}
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_FT_UNREACHABLE": json.dumps({**conn, "extra": {"max_retries": 0}}),
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", "ft_unreachable"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"no response from 127.0.0.1:{closed_port}: connection refused" in result.stdout, result.stdout
