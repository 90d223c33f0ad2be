"""Validation against user-supplied hosts: stored secrets only go to the server they were stored for, and a hostile
or stalling peer can neither hold the state store nor the API hostage."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.cdc.api.test_connectors_api import seed_body
from tests.conftest import PgServer
from tests.fakes.hostile_peer import HostilePeer, Mode
from tests.fixtures.cdc_service import CdcService

MASK = "********"


@pytest.fixture(scope="module")
def api(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service(workers=0)


@pytest.fixture
def http(api: CdcService) -> requests.Session:
    return api.session()


@pytest.fixture
def hostile_peer() -> Iterator[Callable[[Mode], HostilePeer]]:
    peers: list[HostilePeer] = []

    def start(mode: Mode) -> HostilePeer:
        peers.append(HostilePeer(mode).start())
        return peers[-1]

    yield start
    for peer in peers:
        peer.stop()


def _stored_connector(api: CdcService, http: requests.Session, pg_server: PgServer) -> dict[str, Any]:
    connection = pg_server.connector_connection("postgres")
    body = seed_body(
        source={"postgres": {"connection": connection, "replication_type": {"logical_replication": {}}}},
        sink={"postgres": {"connection": connection}},
    )
    response = http.post(f"{api.api}/connectors", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json()["connector"])


@pytest.mark.parametrize(
    ("side", "change", "field"),
    [
        ("source", {"port": "PEER"}, "source.postgres.connection.port"),
        ("sink", {"port": "PEER"}, "sink.postgres.connection.port"),
        ("source", {"host": "localhost", "port": "PEER"}, "source.postgres.connection.host"),
        ("sink", {"database": "template1"}, "sink.postgres.connection.database"),
        ("source", {"ssl_mode": "Disable"}, "source.postgres.connection.ssl_mode"),
        ("sink", {"ssl_root_cert": "/tmp/attacker-ca.pem"}, "sink.postgres.connection.ssl_root_cert"),
    ],
)
def test_a_masked_password_is_only_restored_for_the_stored_server(
    api: CdcService,
    http: requests.Session,
    pg_server: PgServer,
    hostile_peer: Callable[[Mode], HostilePeer],
    side: str,
    change: dict[str, Any],
    field: str,
) -> None:
    peer = hostile_peer("capture")
    connector = _stored_connector(api, http, pg_server)
    body = copy.deepcopy(connector[side])  # as a client read it: password masked
    connection = body["postgres"]["connection"]
    assert connection["password"] == MASK
    connection.update({key: peer.port if value == "PEER" else value for key, value in change.items()})
    response = http.post(f"{api.api}/validate/{side}", params={"connector_id": connector["id"]}, json=body, timeout=30)
    captured = len(peer.passwords)
    assert captured == 0, "the stored password was sent to a host the connector does not name"
    assert peer.accepted == 0
    assert response.status_code == 422, response.status_code
    error = response.json()["error"]
    assert error["field"] == field and "stored" in error["message"]
    assert pg_server.password not in response.text


def test_the_masked_password_still_works_for_the_same_server(
    api: CdcService, http: requests.Session, pg_server: PgServer
) -> None:
    connector = _stored_connector(api, http, pg_server)
    for side in ("source", "sink"):
        response = http.post(
            f"{api.api}/validate/{side}", params={"connector_id": connector["id"]}, json=connector[side], timeout=30
        )
        assert response.status_code == 200, response.text
        assert response.json()["steps"][0] == {
            "name": "connect",
            "passed": True,
            "message": "connected to PostgreSQL 18",
        }


def test_a_password_given_in_the_body_goes_where_the_body_says(
    api: CdcService, http: requests.Session, pg_server: PgServer, hostile_peer: Callable[[Mode], HostilePeer]
) -> None:
    """The rule is about the stored secret: a caller may test its own password against any host it names."""
    peer = hostile_peer("capture")
    connector = _stored_connector(api, http, pg_server)
    body = copy.deepcopy(connector["sink"])
    body["postgres"]["connection"].update({"port": peer.port, "password": "callers-own-password"})
    response = http.post(f"{api.api}/validate/sink", params={"connector_id": connector["id"]}, json=body, timeout=30)
    assert response.status_code == 200 and response.json()["ok"] is False
    assert peer.passwords == ["callers-own-password"]


DEADLINE = 3.0
CAP = 4


@pytest.fixture(scope="module")
def bounded(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    """A service with a short validation deadline (3 s) and room for 4 validations at a time."""
    env = {"CDC_VALIDATION_DEADLINE_SECONDS": str(DEADLINE), "CDC_MAX_CONCURRENT_VALIDATIONS": str(CAP)}
    return start_cdc_service(workers=0, env=env)


def _sink_at(port: int, **connection: Any) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "port": port, "user": "u", "password": "callers-password", "database": "d"}
    return {"postgres": {"connection": {**base, **connection}}}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stall", "stall_after_auth"])
def test_a_stalling_peer_cannot_starve_the_api(
    bounded: CdcService, hostile_peer: Callable[[Mode], HostilePeer], mode: Mode
) -> None:
    """A dozen validations against a peer that accepts and then never answers: every other API call still answers at
    once, validations over the cap get 429, and the admitted ones end (a failed step) by the deadline."""
    from concurrent.futures import ThreadPoolExecutor

    peer = hostile_peer(mode)
    http = bounded.session()
    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        futures = [
            pool.submit(http.post, f"{bounded.api}/validate/sink", json=_sink_at(peer.port), timeout=60)
            for _ in range(12)
        ]
        wait_for(lambda: peer.accepted >= CAP, timeout=10)
        for _ in range(5):  # the state store stays available while the peer holds the validations
            listed = http.get(f"{bounded.api}/connectors", timeout=5)
            assert listed.status_code == 200, listed.text
        responses = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    codes = sorted(response.status_code for response in responses)
    print(f"{mode}: 12 validations against a stalling peer answered in {elapsed:.1f} s: {codes}")
    assert set(codes) <= {200, 429} and codes.count(200) >= CAP, codes
    for response in responses:
        if response.status_code == 429:
            assert (
                response.headers["Retry-After"] and response.json()["error"]["code"] == "too_many_outbound_connections"
            )
            continue
        report = response.json()
        assert report["ok"] is False
        assert any("deadline (3 s)" in step["message"] for step in report["steps"]), report
    assert elapsed < DEADLINE + 6, elapsed
    assert peer.accepted <= 12


@pytest.mark.parametrize(
    ("connection", "field"),
    [
        ({"host": "127.0.0.1,10.0.0.1"}, "sink.postgres.connection.host"),
        ({"host": "/var/run/postgresql"}, "sink.postgres.connection.host"),
        ({"host": "@abstract"}, "sink.postgres.connection.host"),
        ({"ssl_root_cert": "/etc/ssl/private/server.key"}, "sink.postgres.connection.ssl_root_cert"),
        ({"ssl_cert": "/etc/passwd"}, "sink.postgres.connection.ssl_cert"),
        ({"ssl_key": "/etc/shadow"}, "sink.postgres.connection.ssl_key"),
    ],
)
def test_one_host_and_no_service_files(
    bounded: CdcService, hostile_peer: Callable[[Mode], HostilePeer], connection: dict[str, Any], field: str
) -> None:
    peer = hostile_peer("capture")
    response = bounded.session().post(
        f"{bounded.api}/validate/sink", json=_sink_at(peer.port, **connection), timeout=30
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert peer.accepted == 0


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.slow
def test_deleting_connectors_of_a_stalling_source_cannot_starve_the_api(
    bounded: CdcService, hostile_peer: Callable[[Mode], HostilePeer]
) -> None:
    """DELETE drops the source's slot: against a source that stalls after authentication, it holds no state-store
    connection while trying, gives up at the deadline (409 naming the remedy), and the API keeps answering."""
    from concurrent.futures import ThreadPoolExecutor

    peer = hostile_peer("stall_after_auth")
    http = bounded.session()
    ids = []
    for _ in range(12):
        body = seed_body(
            source={"postgres": {"connection": _sink_at(peer.port)["postgres"]["connection"], "replication_type": {}}}
        )
        response = http.post(f"{bounded.api}/connectors", json=body, timeout=30)
        assert response.status_code == 201, response.text
        ids.append(response.json()["connector"]["id"])
    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(http.delete, f"{bounded.api}/connectors/{cid}", timeout=60) for cid in ids]
        wait_for(lambda: peer.accepted >= CAP, timeout=10)
        for _ in range(5):
            listed = http.get(f"{bounded.api}/connectors", timeout=5)
            assert listed.status_code == 200, listed.text
        responses = [future.result() for future in futures]
    elapsed = time.monotonic() - started
    codes = sorted(response.status_code for response in responses)
    print(f"12 deletes of connectors whose source stalls answered in {elapsed:.1f} s: {codes}")
    assert set(codes) <= {409, 429}, codes
    for response in responses:
        assert "keep_replication_objects" in response.json()["error"]["message"] or response.status_code == 429
    assert elapsed < DEADLINE + 6, elapsed
    kept = http.delete(f"{bounded.api}/connectors/{ids[0]}", params={"keep_replication_objects": "true"}, timeout=30)
    assert kept.status_code == 204
