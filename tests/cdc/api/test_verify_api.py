"""Verification through the service with the real engine: POST /verify and "verify": true on a run; the report
and the sink table names are on the run, and a corrupted sink row fails the run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.cdc.runs.client import RunsClient
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService

pytestmark = pytest.mark.slow


def connection(pg_server: PgServer, dsn: str) -> dict[str, Any]:
    return pg_server.connector_connection(str(conninfo_to_dict(dsn)["dbname"]))


@pytest.fixture
def setup(
    cdc_service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]
) -> tuple[RunsClient, str, str, str]:
    source, sink = make_database("vsrc"), make_database("vsnk")
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA q1; CREATE SCHEMA q2")
        conn.execute("CREATE TABLE q1.w (id int PRIMARY KEY, v text); CREATE TABLE q2.w (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO q1.w SELECT i, 'a' || i FROM generate_series(1, 300) i")
        conn.execute("INSERT INTO q2.w SELECT i, 'b' || i FROM generate_series(1, 300) i")
    client = RunsClient(cdc_service.url, cdc_service.token, pg_server.connector_connection())
    body = {
        "id": "",
        "source": {"postgres": {"connection": connection(pg_server, source), "replication_type": {}}},
        "sink": {"postgres": {"connection": connection(pg_server, sink), "target_schema": "replica"}},
    }
    response = client.http.post(f"{client.api}/connectors", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return client, response.json()["connector"]["id"], source, sink


def test_verify_endpoint_reports_equal_then_a_corrupted_row(setup: tuple[RunsClient, str, str, str]) -> None:
    client, connector_id, _, sink = setup
    first = client.wait_run(connector_id, client.start(connector_id), timeout=120)
    assert first["state"] == "succeeded" and first["verify"] is False and first["verification"] is None
    assert first["sink_tables"] == {
        "q1.w": {"target_schema": "replica", "table": "q1_w"},
        "q2.w": {"target_schema": "replica", "table": "q2_w"},
    }
    response = client.http.post(f"{client.api}/connectors/{connector_id}/verify", timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["verify"] is True and response.json()["mode"] == "catch_up"
    run = client.wait_run(connector_id, response.json()["run_id"], timeout=120)
    assert run["state"] == "succeeded", run["error"]
    report = run["verification"]
    assert report["status"] == "equal" and report["lsn"] and report["seconds"] >= 0
    assert report["tables"]["q2.w"]["sink_table"] == "replica.q2_w" and report["tables"]["q2.w"]["sink_rows"] == 300

    with psycopg.connect(sink, autocommit=True) as conn:
        conn.execute("UPDATE replica.q2_w SET v = 'corrupted' WHERE id = 123")
    run = client.wait_run(connector_id, client.start(connector_id, verify=True), timeout=120)
    assert run["state"] == "failed"
    assert "q2.w -> replica.q2_w" in run["error"] and "id=123 different" in run["error"]
    assert '"resync": ["q2.w"]' in run["error"]
    table = run["verification"]["tables"]["q2.w"]
    assert table["status"] == "differing" and table["differing_keys"] == [{"key": {"id": "123"}, "issue": "different"}]
    assert run["verification"]["tables"]["q1.w"]["status"] == "equal"


def test_verify_is_refused_on_continuous_runs_and_while_a_run_is_active(
    setup: tuple[RunsClient, str, str, str],
) -> None:
    client, connector_id, _, _ = setup
    response = client.start_run(connector_id, mode="continuous", verify=True)
    assert response.status_code == 422 and response.json()["error"]["field"] == "verify"
    active = client.start(connector_id, mode="continuous")
    response = client.http.post(f"{client.api}/connectors/{connector_id}/verify", timeout=30)
    assert response.status_code == 409 and response.json()["error"]["run_id"] == active
    assert client.cancel(connector_id, active).status_code == 202
    client.wait_run(connector_id, active, timeout=60)
    missing = client.http.post(f"{client.api}/connectors/nope/verify", timeout=30)
    assert missing.status_code == 404
