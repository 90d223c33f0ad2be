"""Every engine and validation session to a source or sink: TCP keepalives and a user timeout (a dead peer or a cut
network is noticed in about 30 s), a bounded handshake, and never the service's own stored credentials."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psycopg
import pytest

from airflow_connectors.cdc.connectors.models import PostgresConnection
from tests.conftest import PgServer
from tests.fakes.hostile_peer import HostilePeer

TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)


def test_sessions_have_keepalives_and_a_user_timeout(pg_server: PgServer) -> None:
    connection = PostgresConnection.model_validate(pg_server.connector_connection())
    with psycopg.connect(connection.conninfo()) as conn:
        sock = socket.socket(fileno=socket.dup(conn.pgconn.socket))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 30_000
        finally:
            sock.close()


def test_the_handshake_is_bounded() -> None:
    peer = HostilePeer("stall").start()
    try:
        connection = PostgresConnection(host="127.0.0.1", port=peer.port, user="u", password="p", database="d")
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(connection.conninfo(connect_timeout=2))
        assert time.monotonic() - started < 5
    finally:
        peer.stop()


def test_an_empty_password_never_uses_the_services_password_file(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{pg_server.password}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    connection = PostgresConnection.model_validate({**pg_server.connector_connection(), "password": ""})
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(connection.conninfo()).close()
