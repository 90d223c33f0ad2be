"""A logical replication stream read over the replication protocol (CopyBoth), at the libpq level.

psycopg >= 3.3 accepts ``START_REPLICATION`` on a ``replication=database`` connection; we then drive CopyBoth with
``pgconn`` directly: non-blocking reads with ``select`` on the socket (so the caller's stop checks and flush
deadlines keep their pace), keepalive replies, and standby status updates that confirm only what the sink has
committed, so the slot never advances past data we could still lose.
"""

from __future__ import annotations

import select
import struct
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import pq, sql

from airflow_connectors.cdc.engine.interface import SlotLostError, TransientEngineError
from airflow_connectors.cdc.engine.pgoutput import int_to_lsn, lsn_to_int
from airflow_connectors.cdc.engine.slot import RESYNC_REMEDY, exec_simple, replication_connection

_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_XLOG_END = struct.Struct("!Q")  # XLogData: start, end, send time; then the payload at byte 25
_KEEPALIVE = struct.Struct("!QQB")
_STATUS = struct.Struct("!cQQQqB")
READ_AT_MOST, READ_AT_MOST_BYTES = 1000, 1 << 20  # per read (messages, bytes): a stop is checked between reads
STATUS_EVERY = 10.0  # seconds between status updates at most (as PostgreSQL's own wal_receiver_status_interval)
STREAMING_SINCE = 140000  # server_version_num of the first release whose pgoutput streams transactions in progress
# A walsender streams a transaction in progress once its decoded changes outgrow logical_decoding_work_mem (64MB by
# default): ours asks for blocks this size, so a big transaction reaches the sink (and is applied, see ``stream``)
# while it runs instead of in a few large bursts, the last one after its COMMIT. Never raised above the server's.
STREAM_WORK_MEM_KB = 4096
SLOT_LOST_MARKERS = ("does not exist", "invalidated", "can no longer get changes", "has been invalidated")


def classify(error: BaseException | str) -> Exception:
    """A replication error as the engine error it means: slot gone (resync) or a transient failure (retry)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if any(marker in message for marker in SLOT_LOST_MARKERS):
        return SlotLostError(f"{message}; {RESYNC_REMEDY}")
    return TransientEngineError(f"replication stream: {message}")


def start_replication(
    slot: str, start_lsn: str, publication: str, *, binary: bool, streaming: bool = False
) -> sql.Composed:
    """The walsender command streaming pgoutput from ``start_lsn`` (an LSN is a bare ``X/Y``, not a literal);
    ``streaming``: protocol 2 with transactions streamed while in progress."""
    options = {"proto_version": "2" if streaming else "1", "publication_names": publication, "messages": "true"}
    if streaming:
        options["streaming"] = "on"
    if binary:
        options["binary"] = "true"
    return sql.SQL("START_REPLICATION SLOT {} LOGICAL {} ({})").format(
        sql.Identifier(slot),
        sql.SQL(int_to_lsn(lsn_to_int(start_lsn))),  # parsed and re-printed: nothing but an LSN gets through
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.SQL(name), sql.Literal(value)) for name, value in options.items()
        ),
    )


def stream_sooner(conn: psycopg.Connection[Any]) -> None:
    """This walsender's logical_decoding_work_mem at most :data:`STREAM_WORK_MEM_KB` (a session setting)."""
    rows = exec_simple(conn, "SELECT setting::int FROM pg_settings WHERE name = 'logical_decoding_work_mem'")
    if rows and rows[0][0] is not None and int(rows[0][0]) > STREAM_WORK_MEM_KB:
        setting = sql.SQL("SET logical_decoding_work_mem = {}").format(sql.Literal(f"{STREAM_WORK_MEM_KB}kB"))
        exec_simple(conn, setting.as_string(conn))


class ReplicationStream:
    def __init__(self, conninfo: str, slot: str, publication: str, start_lsn: str, *, binary: bool) -> None:
        try:
            self.conn: psycopg.Connection[Any] = replication_connection(conninfo)
        except psycopg.OperationalError as exc:
            raise TransientEngineError(f"cannot open a replication connection to the source: {exc}") from None
        # Protocol 2 streams large transactions while they run (PostgreSQL 14+); older servers speak only 1.
        streaming = self.conn.info.server_version >= STREAMING_SINCE
        if streaming:
            stream_sooner(self.conn)
        command = start_replication(slot, start_lsn, publication, binary=binary, streaming=streaming)
        # Silent longer than wal_sender_timeout, a client is cut off: status updates go out at least 4 times as often,
        # also while the stream is not read (a big transaction being applied).
        rows = exec_simple(self.conn, "SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout'")
        timeout_ms = int(rows[0][0] or 0) if rows else 0
        self.status_every = min(STATUS_EVERY, timeout_ms / 4000) if timeout_ms > 0 else STATUS_EVERY
        self.last_status = time.monotonic()
        pgconn = self.conn.pgconn
        pgconn.send_query(command.as_bytes(self.conn))
        result = pgconn.get_result()
        if result is None or result.status != pq.ExecStatus.COPY_BOTH:
            message = (result.error_message if result is not None else pgconn.error_message) or b"no result"
            self.conn.close()
            raise classify(message.decode(errors="replace"))
        self.confirmed = lsn_to_int(start_lsn)
        self.last_received = self.confirmed

    def read(self, timeout: float) -> list[bytes]:
        """The pgoutput messages (XLogData payloads) already received, up to :data:`READ_AT_MOST`; waits up to
        ``timeout`` seconds for the first one, and returns none if nothing came. Taking what is there in one call
        keeps the per-message cost of a busy stream low."""
        pgconn = self.conn.pgconn
        messages: list[bytes] = []
        size_read = 0
        deadline: float | None = None  # set when there is nothing to read: a busy stream never asks the clock
        while True:
            try:
                size, data = pgconn.get_copy_data(1)
            except psycopg.Error as exc:
                raise classify(exc) from None
            if size == 0:
                if messages:
                    return messages
                now = time.monotonic()
                deadline = now + timeout if deadline is None else deadline
                left = deadline - now
                if left <= 0:
                    return messages
                readable, _, _ = select.select([pgconn.socket], [], [], min(left, 1.0))
                if readable:
                    try:
                        pgconn.consume_input()
                    except psycopg.Error as exc:
                        raise classify(exc) from None
                continue
            if size < 0:
                result = pgconn.get_result()
                message = result.error_message if result is not None else pgconn.error_message
                raise classify((message or b"the source ended the replication stream").decode(errors="replace"))
            if data[0] == 0x77:  # 'w' XLogData
                (end,) = _XLOG_END.unpack_from(data, 9)
                if end > self.last_received:
                    self.last_received = end
                messages.append(bytes(data[25:]))  # one copy, of the payload only
                size_read += size
                if size_read >= READ_AT_MOST_BYTES or len(messages) >= READ_AT_MOST:
                    return messages
            elif data[0] == 0x6B:  # 'k' keepalive
                end, _, reply = _KEEPALIVE.unpack_from(data, 1)
                self.last_received = max(self.last_received, end)
                if reply:
                    self.send_status()

    def confirm(self, lsn: int) -> None:
        """Everything up to ``lsn`` is committed in the sink: let the slot release the WAL before it."""
        if lsn > self.confirmed:
            self.confirmed = lsn
            self.send_status()

    def keep_alive(self) -> None:
        """Tell the source we are alive if it has not heard from us for a while (cheap: call it at will)."""
        if time.monotonic() - self.last_status >= self.status_every:
            self.send_status()

    def send_status(self) -> None:
        self.last_status = time.monotonic()
        now = int((time.time() - _EPOCH_2000) * 1_000_000)
        pgconn = self.conn.pgconn
        try:
            pgconn.put_copy_data(_STATUS.pack(b"r", self.confirmed, self.confirmed, self.confirmed, now, 0))
            pgconn.flush()
        except psycopg.Error as exc:
            raise classify(exc) from None

    def close(self) -> None:
        try:
            if not self.conn.closed:
                self.send_status()
        except Exception:  # closing after a broken stream: nothing left to tell the server
            pass
        self.conn.close()
