"""A thin test client of the runs API (and the connector endpoints runs need), with condition waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

TERMINAL = {"succeeded", "failed", "cancelled"}


class RunsClient:
    def __init__(self, base_url: str, token: str, source_conninfo: dict[str, Any]) -> None:
        self.api = f"{base_url}/api/v1"
        self.token = token
        self.source = source_conninfo
        self.http = self.session()

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def create_connector(self, behaviour: str, **fields: Any) -> str:
        """A connector whose fake engine behaviour is ``behaviour`` (see fake_engines)."""
        connection = {key: self.source[key] for key in ("host", "port", "user", "password", "database")}
        body = {
            "id": "",
            "name": f"fake:{behaviour}",
            "source": {
                "postgres": {
                    "connection": connection,
                    "replication_type": {"logical_replication": {"retry_window_seconds": fields.pop("retry", 300)}},
                }
            },
            "sink": {"postgres": {"connection": connection}},
            **fields,
        }
        response = self.http.post(f"{self.api}/connectors", json=body, timeout=30)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["connector"]["id"])

    def connector(self, connector_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api}/connectors/{connector_id}", timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def start_run(self, connector_id: str, **body: Any) -> requests.Response:
        return self.http.post(f"{self.api}/connectors/{connector_id}/runs", json=body, timeout=30)

    def start(self, connector_id: str, **body: Any) -> str:
        response = self.start_run(connector_id, **body)
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])

    def run(self, connector_id: str, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api}/connectors/{connector_id}/runs/{run_id}", timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def cancel(self, connector_id: str, run_id: str) -> requests.Response:
        return self.http.post(f"{self.api}/connectors/{connector_id}/runs/{run_id}/cancel", timeout=30)

    def wait_run(
        self,
        connector_id: str,
        run_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda run: run["state"] in TERMINAL,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return wait_for(lambda: self.run(connector_id, run_id), until, timeout, f"run {run_id}")


def wait_for(probe: Callable[[], Any], until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Poll ``probe`` until ``until(value)`` holds; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: condition not met within {timeout}s; last value: {value!r}")
        time.sleep(0.05)
