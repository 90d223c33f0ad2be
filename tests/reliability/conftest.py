"""Reliability suite: the real service and engine between two dedicated PostgreSQL servers (so tests may restart
or kill them), with a short worker lease so a killed service's run is taken over quickly."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres
from tests.cdc.engine.conftest import checksum
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.secret_scan import register_secret

LEASE = {"CDC_LEASE_SECONDS": "3"}
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EmbeddedPostgres, EmbeddedPostgres]]:
    root = Path(tempfile.mkdtemp(prefix="airflow-connectors-reliability-"))  # outside pytest's rotated basetemp
    source, sink = EmbeddedPostgres(root / "source").start(), EmbeddedPostgres(root / "sink").start()
    register_secret(source.password)
    register_secret(sink.password)
    yield source, sink
    source.destroy()
    sink.destroy()


@dataclass
class Replication:
    """One connector from a fresh source database to a fresh sink database, driven through the service API."""

    service: CdcService
    source_server: EmbeddedPostgres
    sink_server: EmbeddedPostgres
    source: str
    sink: str
    connector_id: str

    @property
    def http(self) -> requests.Session:
        return self.service.session()

    def on_source(self, *statements: str) -> None:
        with psycopg.connect(self.source, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def start(self, **body: Any) -> str:
        response = self.http.post(f"{self.service.api}/connectors/{self.connector_id}/runs", json=body, timeout=30)
        assert response.status_code == 202, response.text
        return str(response.json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.service.api}/connectors/{self.connector_id}/runs/{run_id}", timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(
        self,
        run_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda r: r["state"] in TERMINAL,
        timeout: float = 120,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                run = self.run(run_id)
            except requests.ConnectionError:  # the service is being restarted by the test
                run = {"state": "unknown"}
            if until(run):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id}: condition not met in {timeout}s; last: {run}")
            time.sleep(0.1)

    def equal(self, *tables: str) -> None:
        for table in tables:
            schema, name = table.split(".")
            assert checksum(self.source, table) == checksum(self.sink, f"replica.{name}"), table


@pytest.fixture
def replication(
    servers: tuple[EmbeddedPostgres, EmbeddedPostgres], start_cdc_service: Callable[..., CdcService]
) -> Iterator[Replication]:
    source_server, sink_server = servers
    suffix = uuid.uuid4().hex[:8]
    source = source_server.create_database(f"src_{suffix}")
    sink = sink_server.create_database(f"snk_{suffix}")
    service = start_cdc_service(workers=1, env=LEASE)

    def connection(server: EmbeddedPostgres, database: str) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": server.port,
            "user": "postgres",
            "password": server.password,
            "database": database,
        }

    body = {
        "id": "",
        "name": f"reliability-{suffix}",
        "source": {
            "postgres": {
                "connection": connection(source_server, f"src_{suffix}"),
                "replication_type": {"logical_replication": {"retry_window_seconds": 60}},
            }
        },
        "sink": {"postgres": {"connection": connection(sink_server, f"snk_{suffix}"), "target_schema": "replica"}},
        "buffer": {"max_rows": 20000, "flush_interval_ms": 200},
    }
    response = service.session().post(f"{service.api}/connectors", json=body, timeout=30)
    assert response.status_code == 201, response.text
    created = Replication(service, source_server, sink_server, source, sink, response.json()["connector"]["id"])
    yield created
    service.stop()
    with psycopg.connect(source_server.conninfo(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND database = %s",
            (f"src_{suffix}",),
        )
