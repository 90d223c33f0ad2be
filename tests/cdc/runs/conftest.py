"""Fixtures of the runs tests: a real state database with the store's migrations applied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from airflow_connectors.cdc.connectors.store import migrate
from airflow_connectors.cdc.runs.pool import WorkerOptions, WorkerPool, start_workers
from airflow_connectors.cdc.settings import ServiceSettings
from tests.cdc.runs.client import RunsClient
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService


@pytest.fixture
def state_dsn(make_database: Callable[[str], str]) -> str:
    """A fresh state database with the store's migrations applied."""
    dsn = make_database("state")
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
    return dsn


@pytest.fixture
def state_conn(state_dsn: str) -> psycopg.Connection:
    with psycopg.connect(state_dsn, autocommit=True) as conn:
        yield conn


FAKE_ENGINE = "tests.cdc.runs.fake_engines:execute_run"
# Short leases so a killed worker's run is recovered within a test's patience.
FAST_WORKERS = WorkerOptions(processes=2, lease_seconds=3.0, poll_seconds=0.2, engine=FAKE_ENGINE)


@pytest.fixture
def fake_engine_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the fake engine logs executions; set before worker processes are spawned (they inherit it)."""
    monkeypatch.setenv("CDC_FAKE_ENGINE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def runs_service(start_cdc_service: Callable[..., CdcService], fake_engine_dir: Path) -> Iterator[CdcService]:
    """The API only (no workers): the tests start worker pools themselves, to stop and kill them."""
    service = start_cdc_service(workers=0)
    yield service
    service.stop()


def _pool(service: CdcService) -> WorkerPool:
    settings = ServiceSettings(state_dsn=service.state_dsn, api_token=service.token, secret_key=service.secret_key)
    return start_workers(settings, FAST_WORKERS)


@pytest.fixture
def runs_pool(runs_service: CdcService) -> Iterator[WorkerPool]:
    pool = _pool(runs_service)
    yield pool
    pool.stop()


@pytest.fixture
def spare_pool(runs_service: CdcService) -> Iterator[WorkerPool]:
    """A second pool, as another service process on the same store would run."""
    pool = _pool(runs_service)
    yield pool
    pool.stop()


second_pool = spare_pool


@pytest.fixture
def runs_api(runs_service: CdcService, runs_pool: WorkerPool, pg_server: PgServer) -> RunsClient:
    source = pg_server.connector_connection()
    return RunsClient(runs_service.url, runs_service.token, source)
