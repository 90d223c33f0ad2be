"""Engine tests: a source and a sink database on the session's server, a connector between them, a recording
reporter, and a checksum that says whether two tables hold the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.engine import _accel, drop_source_objects, execute_run
from airflow_connectors.cdc.engine.interface import EnginePhase, RunMode, RunRequest, RunResult, TableCounters
from tests.conftest import PgServer


@dataclass
class RecordingReporter:
    phases: list[EnginePhase] = field(default_factory=list)
    tables: dict[str, TableCounters] = field(default_factory=dict)
    positions_seen: list[dict[str, str | None]] = field(default_factory=list)
    health: list[tuple[int | None, str | None]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def phase(self, phase: EnginePhase) -> None:
        self.phases.append(phase)

    def table_progress(self, table: str, counters: TableCounters) -> None:
        self.tables[table] = counters

    def positions(self, **positions: str | None) -> None:
        self.positions_seen.append(positions)

    def slot_health(self, *, lag_bytes: int | None, wal_status: str | None) -> None:
        self.health.append((lag_bytes, wal_status))

    def log(self, message: str) -> None:
        self.logs.append(message)


def compiled_hot_path() -> _accel.HotPath:
    """The compiled hot path; the test is skipped where it was not built (no C compiler at install)."""
    if _accel.COMPILED is None:
        pytest.skip("the compiled hot path is not built (no C compiler when the package was installed)")
    return _accel.COMPILED


@pytest.fixture(params=["python", "cython"])
def hot_path(request: pytest.FixtureRequest) -> _accel.HotPath:
    """Each implementation of the hot path in turn, whichever one the engine runs: both must behave the same."""
    return _accel.PURE if request.param == "python" else compiled_hot_path()


@dataclass
class Pair:
    """A source and a sink database, and a connector replicating one into the other."""

    source: str
    sink: str
    connector: Connector

    def run(
        self,
        mode: RunMode = RunMode.CATCH_UP,
        resync: bool | tuple[str, ...] = False,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> tuple[RunResult, RecordingReporter]:
        reporter = RecordingReporter()
        request = RunRequest(run_id=str(uuid.uuid4()), mode=mode, resync=resync)
        return execute_run(self.connector, request, reporter, should_stop), reporter

    def on_source(self, *statements: str) -> None:
        with psycopg.connect(self.source, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def with_changes(self, **fields: Any) -> Pair:
        document = self.connector.stored()
        for path, value in fields.items():
            target = document
            *parents, last = path.split("__")
            for part in parents:
                target = target[part]
            target[last] = value
        return Pair(self.source, self.sink, Connector.model_validate(document))


def checksum(conninfo: str, table: str, columns: str = "*") -> tuple[int, str]:
    schema, name = table.split(".", 1)
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')"
                " FROM (SELECT {} FROM {}) AS r"
            ).format(sql.SQL(columns), sql.Identifier(schema, name))
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def make_pair(pg_server: PgServer, source: str, sink: str) -> Pair:
    """A connector replicating database ``source`` into schema ``replica`` of database ``sink`` on the server."""

    def connection(conninfo: str) -> dict[str, Any]:
        return pg_server.connector_connection(str(conninfo_to_dict(conninfo)["dbname"]))

    connector = Connector.model_validate(
        {
            "id": f"test-{uuid.uuid4().hex[:8]}",
            "source": {"postgres": {"connection": connection(source), "replication_type": {"logical_replication": {}}}},
            "sink": {"postgres": {"connection": connection(sink), "target_schema": "replica"}},
            "buffer": {"max_rows": 1000, "flush_interval_ms": 100},
        }
    )
    return Pair(source, sink, connector)


@pytest.fixture
def pair(make_database: Callable[[str], str], pg_server: PgServer) -> Iterator[Pair]:
    created = make_pair(pg_server, make_database("src"), make_database("snk"))
    yield created
    drop_source_objects(created.connector)


@pytest.fixture(scope="module", params=["pg18", "pg15"])
def versioned_pg_server(request: pytest.FixtureRequest) -> PgServer:
    """The session's server (embedded 18, or ``CDC_TEST_PG_DSN``), then the system's 15: suites whose outcome
    depends on the server's version (Relation messages, MERGE, generated columns in the WAL) run on both."""
    return request.getfixturevalue("pg_server" if request.param == "pg18" else "pg15_server")  # type: ignore[no-any-return]


@pytest.fixture
def versioned_pair(versioned_pg_server: PgServer) -> Iterator[Pair]:
    """:func:`pair` on each server of :func:`versioned_pg_server` (databases made and dropped here)."""
    server = versioned_pg_server
    names = [f"t_pair_{role}_{uuid.uuid4().hex[:8]}" for role in ("src", "snk")]
    created = make_pair(server, *(server.create_database(name) for name in names))
    yield created
    drop_source_objects(created.connector)
    for name in names:
        server.drop_database(name)
