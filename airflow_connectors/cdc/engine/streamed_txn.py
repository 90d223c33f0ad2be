"""Transactions streamed while still in progress (pgoutput protocol 2, ``streaming 'on'``), staged in the sink.

With streaming the source's walsender sends a large transaction in blocks as it decodes it, interleaved with other
transactions, instead of reassembling (and spilling) it whole before sending a byte; whether it committed comes
last. Its messages are kept as they came, in chunks in a temporary table of the sink keyed by xid, so memory stays
bounded by one chunk per open transaction. At Stream Commit they are read back in order and applied like a protocol 1
transaction, in the sink transaction that also commits the checkpoint (exactly once). A Stream Abort drops the
transaction; the abort of a subtransaction (ROLLBACK TO SAVEPOINT) drops the messages that carry its xid.

The table is temporary on purpose: after a restart the source sends every transaction that committed after the
sink checkpoint again from its first block, so nothing staged has to outlive the session.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine.pgoutput import split_streamed, streamed_xid
from airflow_connectors.cdc.engine.sink_writer import SinkWriter

CHUNK_BYTES = 1 << 20  # messages kept in memory per open transaction before they are written to the sink
_LENGTH = struct.Struct("!I")
_STAGE = sql.Identifier("streamed_changes")
# Relation and Type messages describe a table, they change nothing: one sent inside a subtransaction that is then
# rolled back still describes the rows that follow (the walsender sends a schema once per streamed transaction).
_DESCRIPTIONS = frozenset(b"RY")


class StreamedTransactions:
    """The open streamed transactions of one stream, staged through the sink connection's open transaction by the
    stream's :class:`SinkWriter` (in order with the batches around them)."""

    def __init__(self, sink: psycopg.Connection[Any], writer: SinkWriter) -> None:
        self.sink, self.writer = sink, writer  # the sink is used in the writer's thread only
        self.pending: dict[int, list[bytes]] = {}  # xid -> messages not written to the sink yet
        self.pending_bytes: dict[int, int] = {}
        self.chunks: dict[int, int] = {}  # xid -> chunks written to the sink
        self.aborted: dict[int, set[int]] = {}  # xid -> subtransactions rolled back after some of it was written
        self._created = False

    def start(self, xid: int, first_segment: bool) -> None:
        if first_segment:
            self.discard(xid)  # a transaction sent again from its beginning
        self.pending.setdefault(xid, [])
        self.pending_bytes.setdefault(xid, 0)

    def add(self, xid: int, message: bytes) -> None:
        """A message of the stream block of ``xid``, as received (its own xid still inside)."""
        self.pending[xid].append(message)
        self.pending_bytes[xid] += len(message)
        if self.pending_bytes[xid] >= CHUNK_BYTES:
            self._write(xid)

    def abort(self, xid: int, subxid: int) -> None:
        if subxid == xid:
            self.discard(xid)
            return
        messages = self.pending.get(xid)
        if messages:
            self.pending[xid] = [message for message in messages if not _dropped(message, {subxid})]
            self.pending_bytes[xid] = sum(map(len, self.pending[xid]))
        if self.chunks.get(xid):
            self.aborted.setdefault(xid, set()).add(subxid)

    def commit(self, xid: int) -> Iterator[bytes]:
        """The committed transaction's messages in source order, in protocol 1 form; forgets it once read."""
        aborted = self.aborted.get(xid, set())
        chunks = self.chunks.get(xid, 0)
        following = self.writer.future(partial(self._read, xid, 0)) if chunks else None
        for chunk in range(chunks):
            assert following is not None
            data = self.writer.result(following)
            # Read the next chunk while this one is applied: the writer is never left waiting for the stream.
            following = self.writer.future(partial(self._read, xid, chunk + 1)) if chunk + 1 < chunks else None
            for message in _unpack(data):
                if not _dropped(message, aborted):
                    yield split_streamed(message)[1]
        for message in self.pending.get(xid, []):
            yield split_streamed(message)[1]
        self.discard(xid)

    def discard(self, xid: int) -> None:
        self.pending.pop(xid, None)
        self.pending_bytes.pop(xid, None)
        self.aborted.pop(xid, None)
        if self.chunks.pop(xid, None):
            if self.chunks:
                statement = sql.SQL("DELETE FROM {} WHERE xid = %s").format(_STAGE)
                self.writer.submit(partial(self.sink.execute, statement, (xid,)))
            else:  # nothing else staged: give the space back
                self.writer.submit(partial(self.sink.execute, sql.SQL("TRUNCATE {}").format(_STAGE)))

    def _write(self, xid: int) -> None:
        parts: list[bytes] = []
        for message in self.pending[xid]:
            parts.append(_LENGTH.pack(len(message)))
            parts.append(message)
        chunk = self.chunks.get(xid, 0)
        self.writer.submit(partial(self._insert, xid, chunk, b"".join(parts), create=not self._created))
        self._created = True
        self.chunks[xid] = chunk + 1
        self.pending[xid] = []
        self.pending_bytes[xid] = 0

    # -- in the writer's thread ----------------------------------------------------------------------------------
    def _insert(self, xid: int, chunk: int, data: bytes, *, create: bool) -> None:
        if create:
            # STORAGE EXTERNAL: chunks are stored out of line uncompressed (compressing them would cost more); set
            # apart from CREATE TABLE, whose column STORAGE clause is PostgreSQL 16+.
            self.sink.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (xid bigint, chunk int, data bytea, PRIMARY KEY (xid, chunk))"
                ).format(_STAGE)
            )
            self.sink.execute(sql.SQL("ALTER TABLE {} ALTER data SET STORAGE EXTERNAL").format(_STAGE))
        self.sink.execute(
            sql.SQL("INSERT INTO {} (xid, chunk, data) VALUES (%s, %s, %b)").format(_STAGE), (xid, chunk, data)
        )

    def _read(self, xid: int, chunk: int) -> bytes:
        statement = sql.SQL("SELECT data FROM {} WHERE xid = %s AND chunk = %s").format(_STAGE)
        row = self.sink.cursor(binary=True).execute(statement, (xid, chunk)).fetchone()
        assert row is not None, f"staged chunk {chunk} of transaction {xid} is missing"
        return bytes(row[0])


def _dropped(message: bytes, aborted: set[int]) -> bool:
    return bool(aborted) and message[0] not in _DESCRIPTIONS and streamed_xid(message) in aborted


def _unpack(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    pos, end = 0, len(view)
    while pos < end:
        (length,) = _LENGTH.unpack_from(view, pos)
        pos += 4
        yield bytes(view[pos : pos + length])
        pos += length
