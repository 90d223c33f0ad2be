"""Fixtures shared by the operator, sensor and trigger tests that talk to the real CDC core service.

``fake_cdc`` runs the real service process with the fake engine of the runs tests (behaviour picked by connector
name, ``fake:ok`` / ``fake:block`` / ``fake:slot-lost`` / ...), so failure, cancellation and timeouts are
deterministic; runs that move real rows use ``cdc_service`` (the real engine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from tests.cdc.runs.client import RunsClient, wait_for
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService

FAKE_ENGINE = "tests.cdc.runs.fake_engines:execute_run"
CDC_CONN_ID = "cdc_under_test"


@pytest.fixture(scope="session")
def fake_cdc(start_cdc_service: Callable[..., CdcService], tmp_path_factory: pytest.TempPathFactory) -> CdcService:
    """The real service, its workers running the fake engine (which logs executions in CDC_FAKE_ENGINE_DIR)."""
    os.environ["CDC_FAKE_ENGINE_DIR"] = str(tmp_path_factory.mktemp("fake-engine"))  # inherited by the workers
    return start_cdc_service(engine=FAKE_ENGINE)


@pytest.fixture
def runs(fake_cdc: CdcService, pg_server: PgServer) -> RunsClient:
    """Test-side client of the service (create fake-engine connectors, read and cancel runs)."""
    source = pg_server.connector_connection()
    return RunsClient(fake_cdc.url, fake_cdc.token, source)


@pytest.fixture
def cdc_conn(fake_cdc: CdcService, airflow_connection: Callable[..., str]) -> str:
    """An Airflow ``cdc_core`` connection to the fake-engine service."""
    return airflow_connection(CDC_CONN_ID, conn_type="cdc_core", host=fake_cdc.url, password=fake_cdc.token)


def run_ids(runs: RunsClient, connector_id: str) -> list[str]:
    response = runs.http.get(f"{runs.api}/connectors/{connector_id}/runs", timeout=30)
    assert response.status_code == 200, response.text
    return [item["run_id"] for item in response.json()["items"]]


def wait_run_state(runs: RunsClient, connector_id: str, run_id: str, state: str) -> dict[str, Any]:
    return runs.wait_run(connector_id, run_id, until=lambda run: run["state"] == state)


def cancel_first_run_when_started(runs: RunsClient, connector_id: str) -> None:
    """Wait until the connector has a run that a worker picked up, then cancel it (as a user would)."""
    ids = wait_for(lambda: run_ids(runs, connector_id), bool, 30, f"a run of {connector_id}")
    runs.wait_run(connector_id, ids[0], until=lambda run: run["state"] != "queued")
    assert runs.cancel(connector_id, ids[0]).status_code == 202


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, "a secret leaked"
