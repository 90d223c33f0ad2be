"""The connector's replication slot and publication on the source, and their health.

The slot is created on a replication connection with ``SNAPSHOT 'export'``: the snapshot it exports is exactly the
state at the slot's consistent point, so copying the tables inside it and streaming from the slot afterwards meet
with nothing lost and nothing repeated. The snapshot lives as long as that connection stays open and idle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from airflow_connectors.cdc import io_deadline
from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.engine.interface import EngineError, SlotLostError
from airflow_connectors.cdc.engine.naming import publication_name, slot_name
from airflow_connectors.cdc.engine.plan import TablePlan
from airflow_connectors.cdc.engine.source_catalog import GENERATED_IN_WAL_VERSION

RESYNC_REMEDY = "start a run with resync=true to take a new snapshot"


@dataclass(frozen=True)
class SlotInfo:
    exists: bool
    wal_status: str | None = None
    lag_bytes: int | None = None


def replication_connection(conninfo: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, replication="database", autocommit=True)


def exec_simple(conn: psycopg.Connection[Any], command: str) -> list[tuple[str | None, ...]]:
    """Run a replication command with the simple query protocol (walsenders speak only that) and return rows."""
    result = conn.pgconn.exec_(command.encode())
    if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        message = (result.error_message or b"").decode(errors="replace").strip()
        raise psycopg.OperationalError(message or f"replication command failed: {command.split()[0]}")
    return [
        tuple(
            None if (value := result.get_value(row, col)) is None else value.decode() for col in range(result.nfields)
        )
        for row in range(result.ntuples)
    ]


def _slot_command(conn: psycopg.Connection[Any], name: str, *, temporary: bool, snapshot: bool) -> str:
    """``CREATE_REPLICATION_SLOT`` in the syntax of the server (the option list arrived in PostgreSQL 15)."""
    kind = "TEMPORARY LOGICAL" if temporary else "LOGICAL"
    if conn.info.server_version >= 150000:
        option = "(SNAPSHOT 'export')" if snapshot else "(SNAPSHOT 'nothing')"
    else:
        option = "EXPORT_SNAPSHOT" if snapshot else "NOEXPORT_SNAPSHOT"
    return f"CREATE_REPLICATION_SLOT {sql.Identifier(name).as_string(conn)} {kind} pgoutput {option}"


def create_slot(conn: psycopg.Connection[Any], name: str, *, temporary: bool = False) -> tuple[str, str]:
    """Create a pgoutput slot exporting its snapshot; returns (consistent point LSN, snapshot name)."""
    _, lsn, snapshot, _ = exec_simple(conn, _slot_command(conn, name, temporary=temporary, snapshot=True))[0]
    assert lsn is not None and snapshot is not None
    return lsn, snapshot


def create_slot_without_snapshot(conn: psycopg.Connection[Any], name: str) -> str:
    lsn = exec_simple(conn, _slot_command(conn, name, temporary=False, snapshot=False))[0][1]
    assert lsn is not None
    return lsn


def ensure_publication(conn: psycopg.Connection[Any], name: str, plans: dict[str, TablePlan], as_root: bool) -> None:
    """Create the publication for exactly the planned tables, or bring an existing one in line."""
    tables = sql.SQL(", ").join(sql.Identifier(p.source_schema, p.source_table) for p in plans.values())
    option = sql.SQL("publish_via_partition_root = {}").format(sql.Literal(as_root))
    if conn.info.server_version >= GENERATED_IN_WAL_VERSION:  # stored generated columns' values in the WAL
        option = sql.SQL("{}, publish_generated_columns = stored").format(option)
    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    if exists is None:
        conn.execute(
            sql.SQL("CREATE PUBLICATION {} FOR TABLE {} WITH ({})").format(sql.Identifier(name), tables, option)
        )
    else:
        conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(sql.Identifier(name), tables))
        conn.execute(sql.SQL("ALTER PUBLICATION {} SET ({})").format(sql.Identifier(name), option))


def slot_info(conn: psycopg.Connection[Any], name: str) -> SlotInfo:
    row = conn.execute(
        "SELECT wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
        " FROM pg_replication_slots WHERE slot_name = %s",
        (name,),
    ).fetchone()
    if row is None:
        return SlotInfo(exists=False)
    return SlotInfo(True, row[0], int(row[1]) if row[1] is not None else None)


def check_slot(info: SlotInfo, name: str) -> None:
    """Fail the run with the remedy when the slot can no longer give us every change."""
    if not info.exists:
        raise_slot_lost(f"replication slot {name} does not exist (dropped by someone else?)")
    if info.wal_status == "lost":
        raise_slot_lost(f"replication slot {name} is invalidated (wal_status = 'lost'): the WAL it needed was removed")


def raise_slot_lost(reason: str) -> None:
    raise SlotLostError(f"{reason}; {RESYNC_REMEDY}")


def drop_slot(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop the slot, terminating the walsender that holds it first (a previous run's leftover)."""
    conn.execute(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
        " WHERE slot_name = %s AND active_pid IS NOT NULL",
        (name,),
    )
    for _ in range(50):
        try:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (name,)
            )
            return
        except psycopg.errors.ObjectInUse:  # the terminated walsender has not exited yet
            conn.execute("SELECT pg_sleep(0.1)")
    raise EngineError(f"replication slot {name} stays in use; stop its other consumer")


@contextmanager
def _source_session(connector: Connector, timeout: float) -> Iterator[psycopg.Connection[Any]]:
    """A short session for the API (not a run): the whole of it, handshake included, ends within ``timeout``."""
    started = time.monotonic()
    conninfo = connector.source.postgres.connection.conninfo(connect_timeout=max(2, math.ceil(timeout)))
    with (
        psycopg.connect(conninfo, autocommit=True) as conn,
        io_deadline.deadline(conn, timeout - (time.monotonic() - started)),
    ):
        yield conn


def drop_source_objects(connector: Connector, *, timeout: float = 30.0) -> None:
    """Drop the connector's slot and publication on the source (idempotent): an abandoned slot holds WAL forever."""
    with _source_session(connector, timeout) as conn:
        drop_slot(conn, slot_name(connector.id))
        conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(publication_name(connector.id))))


def source_health(connector: Connector, *, timeout: float = 10.0) -> dict[str, Any]:
    """What the connector status shows about the slot: exists, lag and ``wal_status``."""
    name = slot_name(connector.id)
    with _source_session(connector, timeout) as conn:
        info = slot_info(conn, name)
    return {"exists": info.exists, "slot_name": name, "lag_bytes": info.lag_bytes, "wal_status": info.wal_status}
