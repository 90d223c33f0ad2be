"""Validation against user-supplied hosts: stored secrets only go to the server they were stored for, and a hostile
or stalling peer can neither hold the state store nor the API hostage."""

from __future__ import annotations

import copy
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
