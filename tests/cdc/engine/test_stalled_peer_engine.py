"""A source that completes the handshake and then never answers: the engine's catalog reads are cut off at the
catalog deadline with a transient error naming the side, instead of holding the run (and its worker) forever."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.engine import execute_run, run
from airflow_connectors.cdc.engine.interface import RunMode, RunRequest, TransientEngineError
from tests.cdc.engine.conftest import RecordingReporter
from tests.conftest import PgServer
from tests.fakes.hostile_peer import HostilePeer


@pytest.fixture
def stalling_source() -> Iterator[HostilePeer]:
    peer = HostilePeer("stall_after_auth").start()
    yield peer
    peer.stop()


def test_a_source_that_stops_answering_fails_the_attempt_at_the_catalog_deadline(
    stalling_source: HostilePeer, pg_server: PgServer, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "CATALOG_DEADLINE_SECONDS", 1.0)
    sink_db = str(pg_dsn.split("dbname=")[1].split()[0])
    connector = Connector.model_validate(
        {
            "id": f"stall-{uuid.uuid4().hex[:8]}",
            "source": {
                "postgres": {
                    "connection": {
                        "host": "127.0.0.1",
                        "port": stalling_source.port,
                        "user": "u",
                        "password": "stalled-peer-password",
                        "database": "d",
                    },
                    "replication_type": {"logical_replication": {}},
                }
            },
            "sink": {"postgres": {"connection": pg_server.connector_connection(sink_db), "target_schema": "replica"}},
        }
    )
    request = RunRequest(run_id=str(uuid.uuid4()), mode=RunMode.CATCH_UP)
    started = time.monotonic()
    with pytest.raises(TransientEngineError, match="the source did not answer catalog queries within 1 s"):
        execute_run(connector, request, RecordingReporter(), lambda: False)
    assert time.monotonic() - started < 15
