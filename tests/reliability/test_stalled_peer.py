"""A source that accepts connections and then stalls: its run can still be cancelled within the cancel interval,
whatever the peer does, and another connector's run queued behind it (one run worker) runs right after."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import PgServer
from tests.fakes.hostile_peer import HostilePeer
from tests.fixtures.cdc_service import CdcService

pytestmark = pytest.mark.slow

CANCEL_INTERVAL = 10.0
TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[HostilePeer]:
    stalling = HostilePeer(request.param).start()
    yield stalling
    stalling.stop()


def _connector(http: requests.Session, api: str, source: dict[str, Any], sink: dict[str, Any]) -> str:
    body = {
        "id": "",
        "source": {
            "postgres": {
                "connection": source,
                "replication_type": {"logical_replication": {"retry_window_seconds": 600}},
            }
        },
        "sink": {"postgres": {"connection": sink, "target_schema": "replica"}},
    }
    response = http.post(f"{api}/connectors", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["connector"]["id"])


def _run(http: requests.Session, api: str, connector_id: str, run_id: str) -> dict[str, Any]:
    response = http.get(f"{api}/connectors/{connector_id}/runs/{run_id}", timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait(http: requests.Session, api: str, connector_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (run := _run(http, api, connector_id, run_id))["state"] not in TERMINAL:
        assert time.monotonic() < deadline, f"run still {run['state']} after {timeout} s"
        time.sleep(0.1)
    return run


@pytest.mark.parametrize("peer", ["stall_after_auth", "stall"], indirect=True)
def test_a_stalled_source_is_cancelled_in_time_and_delays_no_other_run(
    peer: HostilePeer,
    start_cdc_service: Callable[..., CdcService],
    pg_server: PgServer,
    make_database: Callable[[str], str],
) -> None:
    service = start_cdc_service(workers=1, env={"CDC_LEASE_SECONDS": "5"})
    http, api = service.session(), service.api
    source_dsn, sink_dsn = make_database("src"), make_database("snk")
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g"
        )
    sink = pg_server.connector_connection(psycopg.conninfo.conninfo_to_dict(sink_dsn)["dbname"])
    healthy_source = pg_server.connector_connection(psycopg.conninfo.conninfo_to_dict(source_dsn)["dbname"])
    stalled_source = {**healthy_source, "host": "127.0.0.1", "port": peer.port, "database": "stalled"}
    stuck = _connector(http, api, stalled_source, sink)
    healthy = _connector(http, api, healthy_source, sink)

    stuck_run = http.post(f"{api}/connectors/{stuck}/runs", json={}, timeout=30).json()["run_id"]
    deadline = time.monotonic() + 30
    while peer.accepted == 0:  # the worker is now talking to the stalling peer
        assert time.monotonic() < deadline, "the run never connected to the source"
        time.sleep(0.05)
    time.sleep(2)  # let it settle into the stall
    other_run = http.post(f"{api}/connectors/{healthy}/runs", json={}, timeout=30).json()["run_id"]

    cancel_asked = time.monotonic()
    cancelled = http.post(f"{api}/connectors/{stuck}/runs/{stuck_run}/cancel", timeout=30)
    assert cancelled.status_code == 202, cancelled.text
    run = _wait(http, api, stuck, stuck_run, timeout=60)
    cancel_seconds = time.monotonic() - cancel_asked
    print(f"{peer.mode}: cancel took effect in {cancel_seconds:.1f} s")
    assert run["state"] == "cancelled", run
    assert cancel_seconds <= CANCEL_INTERVAL + 2, cancel_seconds

    other = _wait(http, api, healthy, other_run, timeout=90)
    print(f"{peer.mode}: the other connector's run ended {time.monotonic() - cancel_asked:.1f} s after the cancel")
    assert other["state"] == "succeeded", other
    assert "exited with" not in service.log()
    service.stop()


@pytest.mark.parametrize("peer", ["stall"], indirect=True)
def test_a_run_retrying_a_stalled_source_lets_other_runs_through(
    peer: HostilePeer,
    start_cdc_service: Callable[..., CdcService],
    pg_server: PgServer,
    make_database: Callable[[str], str],
) -> None:
    """One run worker; connector A's source black-holes connections, so A retries (10 s connect timeout, backoff)
    within its 600 s retry window. B's run, queued meanwhile, must not wait for that window: A's worker serves
    B between two attempts of A."""
    service = start_cdc_service(workers=1, env={"CDC_LEASE_SECONDS": "5"})
    http, api = service.session(), service.api
    source_dsn, sink_dsn = make_database("src"), make_database("snk")
    with psycopg.connect(source_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
    sink = pg_server.connector_connection(psycopg.conninfo.conninfo_to_dict(sink_dsn)["dbname"])
    healthy_source = pg_server.connector_connection(psycopg.conninfo.conninfo_to_dict(source_dsn)["dbname"])
    stuck = _connector(http, api, {**healthy_source, "port": peer.port, "database": "stalled"}, sink)
    healthy = _connector(http, api, healthy_source, sink)
    stuck_run = http.post(f"{api}/connectors/{stuck}/runs", json={}, timeout=30).json()["run_id"]
    deadline = time.monotonic() + 30
    while peer.accepted == 0:
        assert time.monotonic() < deadline, "the run never connected to the source"
        time.sleep(0.05)
    queued = time.monotonic()
    other_run = http.post(f"{api}/connectors/{healthy}/runs", json={}, timeout=30).json()["run_id"]
    other = _wait(http, api, healthy, other_run, timeout=60)
    waited = time.monotonic() - queued
    print(f"the other connector's run ended {waited:.1f} s after it was queued behind the retrying run")
    assert other["state"] == "succeeded", other
    assert waited < 30, waited
    assert _run(http, api, stuck, stuck_run)["state"] not in TERMINAL  # A still retries, within its window
    deadline = time.monotonic() + 20
    while peer.accepted < 2:  # ...and tries again once B is done
        assert time.monotonic() < deadline, "the retrying run was not tried again"
        time.sleep(0.1)
    http.post(f"{api}/connectors/{stuck}/runs/{stuck_run}/cancel", timeout=30)
    assert _wait(http, api, stuck, stuck_run, timeout=30)["state"] == "cancelled"
    service.stop()
