"""Durable state of the service: connectors (this module) and runs (``run_store``), in one PostgreSQL database.

Every write is one transaction holding the connector's row lock, so several service processes on one store
serialise their changes to a connector instead of losing them; merge patches are applied to the row as read under
that lock. Secrets are encrypted before they reach the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.connectors.secrets import SecretBox

MIGRATIONS_PACKAGE = "airflow_connectors.cdc.store_migrations"
# Advisory lock taken while migrating, so two processes starting together do not both apply a migration.
MIGRATION_LOCK_KEY = 0x6364636D69677261


class ConnectorNotFound(LookupError):
    def __init__(self, connector_id: str) -> None:
        super().__init__(f"connector {connector_id!r} does not exist")
        self.connector_id = connector_id


class VersionMismatch(Exception):
    """If-Match did not match: someone else changed the connector since the client read it."""


@dataclass(frozen=True)
class ConnectorRecord:
    connector: Connector
    version: int
    paused: bool
    created_at: datetime

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations not applied yet (files ``NNN_*.sql``, in order); returns those applied now."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz"
            " NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        files = [entry for entry in resources.files(MIGRATIONS_PACKAGE).iterdir() if entry.name.endswith(".sql")]
        for entry in sorted(files, key=lambda item: item.name):
            version = entry.name.removesuffix(".sql")
            if version in done:
                continue
            conn.execute(entry.read_text())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now


def decode_record(secrets: SecretBox, row: dict[str, Any]) -> ConnectorRecord:
    """A ``connectors`` row as a record, its secrets decrypted."""
    return ConnectorRecord(
        connector=Connector.model_validate(secrets.decrypt(row["document"])),
        version=row["version"],
        paused=row["paused"],
        created_at=row["created_at"],
    )


def get_connector(
    conn: psycopg.Connection[Any], secrets: SecretBox, connector_id: str, *, for_update: bool = False
) -> ConnectorRecord:
    """Read one connector on ``conn`` (the API's pooled connection or a run worker's own)."""
    query = "SELECT * FROM connectors WHERE id = %s" + (" FOR UPDATE" if for_update else "")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (connector_id,)).fetchone()
    if row is None:
        raise ConnectorNotFound(connector_id)
    return decode_record(secrets, row)


def check_secret_key(conn: psycopg.Connection[Any], secrets: SecretBox) -> None:
    """Decrypt the oldest and the newest stored connector: a wrong key fails here, at startup, with
    :data:`~.secrets.WRONG_KEY`, instead of in every run and read (or, worse, writing new
    secrets with a second key next to the old ones)."""
    rows = conn.execute(
        "(SELECT document FROM connectors ORDER BY seq LIMIT 1) UNION ALL"
        " (SELECT document FROM connectors ORDER BY seq DESC LIMIT 1)"
    ).fetchall()
    for (document,) in rows:
        secrets.decrypt(document)


class ConnectorStore:
    def __init__(self, dsn: str, secrets: SecretBox, *, max_size: int = 10, timeout: float = 30.0) -> None:
        self.secrets = secrets
        self.pool = ConnectionPool(
            dsn,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            check=self._check_connection,
            open=True,
            name="cdc-state",
        )

    def _check_connection(self, conn: psycopg.Connection[Any]) -> None:
        """A connection gone stale (the state store restarted) is replaced, and so are all the others idle beside it
        at once: the pool would otherwise find them one by one, backing off 1, 2, 4 s between them, and a request
        arriving after a restart would outwait its deadline (503) with a healthy store."""
        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            self.pool.check()
            raise

    def close(self) -> None:
        self.pool.close()

    def acquire(self) -> psycopg.Connection[Any]:
        """A connection the caller gives back with :meth:`release` (for callers that cannot use a ``with``)."""
        return self.pool.getconn()

    def release(self, conn: psycopg.Connection[Any]) -> None:
        self.pool.putconn(conn)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    # ------------------------------------------------------------------------------------------------ reading

    def _record(self, row: dict[str, Any]) -> ConnectorRecord:
        return decode_record(self.secrets, row)

    def get(self, conn: psycopg.Connection[Any], connector_id: str, *, for_update: bool = False) -> ConnectorRecord:
        return get_connector(conn, self.secrets, connector_id, for_update=for_update)

    def list(
        self, conn: psycopg.Connection[Any], *, name: str | None, limit: int, cursor: int | None
    ) -> tuple[list[ConnectorRecord], int | None]:
        """One page in creation order; the cursor is the ``seq`` of the page's last connector."""
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT * FROM connectors WHERE (%(name)s::text IS NULL OR name = %(name)s)"
                " AND (%(after)s::bigint IS NULL OR seq > %(after)s) ORDER BY seq LIMIT %(limit)s",
                {"name": name, "after": cursor, "limit": limit + 1},
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [self._record(row) for row in rows], (rows[-1]["seq"] if more else None)

    # ------------------------------------------------------------------------------------------------ writing

    def _document(self, connector: Connector) -> str:
        return json.dumps(self.secrets.encrypt(connector.stored()))

    def create(self, conn: psycopg.Connection[Any], connector: Connector) -> ConnectorRecord:
        """Insert with a server-generated id."""
        connector = connector.model_copy(update={"id": str(uuid.uuid4())})
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "INSERT INTO connectors (id, name, document) VALUES (%s, %s, %s) RETURNING *",
                (connector.id, connector.name, self._document(connector)),
            ).fetchone()
        assert row is not None
        return self._record(row)

    def replace(
        self, conn: psycopg.Connection[Any], connector_id: str, build: Callable[[ConnectorRecord | None], Connector]
    ) -> tuple[ConnectorRecord, bool]:
        """Create or replace ``connector_id`` with ``build(current or None)``; returns (record, created)."""
        with conn.transaction():
            # Serialise concurrent creates of the same id too (there is no row to lock yet).
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (connector_id,))
            try:
                current: ConnectorRecord | None = self.get(conn, connector_id, for_update=True)
            except ConnectorNotFound:
                current = None
            connector = build(current).model_copy(update={"id": connector_id})
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    "INSERT INTO connectors (id, name, document) VALUES (%(id)s, %(name)s, %(doc)s)"
                    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, document = excluded.document,"
                    " version = connectors.version + 1, updated_at = now() RETURNING *",
                    {"id": connector_id, "name": connector.name, "doc": self._document(connector)},
                ).fetchone()
        assert row is not None
        return self._record(row), current is None

    def update(
        self,
        conn: psycopg.Connection[Any],
        connector_id: str,
        change: Callable[[ConnectorRecord], Connector],
        *,
        if_match: str | None = None,
    ) -> ConnectorRecord:
        """Read under the row lock, apply ``change``, write; ``if_match`` must equal the current ETag if given."""
        with conn.transaction():
            current = self.get(conn, connector_id, for_update=True)
            if if_match is not None and if_match.strip() not in (current.etag, "*"):
                raise VersionMismatch(f"connector {connector_id} changed (ETag is now {current.etag})")
            connector = change(current)
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    "UPDATE connectors SET name = %s, document = %s, version = version + 1, updated_at = now()"
                    " WHERE id = %s RETURNING *",
                    (connector.name, self._document(connector), connector_id),
                ).fetchone()
        assert row is not None
        return self._record(row)

    def set_paused(self, conn: psycopg.Connection[Any], connector_id: str, paused: bool) -> ConnectorRecord:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE connectors SET paused = %s, version = version + 1, updated_at = now() WHERE id = %s"
                " RETURNING *",
                (paused, connector_id),
            ).fetchone()
        if row is None:
            raise ConnectorNotFound(connector_id)
        return self._record(row)

    def delete(self, conn: psycopg.Connection[Any], connector_id: str) -> None:
        """Remove the connector and its run history."""
        with conn.transaction():
            deleted = conn.execute("DELETE FROM connectors WHERE id = %s RETURNING id", (connector_id,)).fetchone()
            if deleted is None:
                raise ConnectorNotFound(connector_id)
            conn.execute("DELETE FROM runs WHERE connector_id = %s", (connector_id,))
