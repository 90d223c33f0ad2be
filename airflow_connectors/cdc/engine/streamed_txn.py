"""Transactions streamed while still in progress (pgoutput protocol 2, ``streaming 'on'``), spooled to local files.

With streaming the source's walsender sends a large transaction in blocks as it decodes it, interleaved with other
transactions, instead of reassembling (and spilling) it whole before sending a byte; whether it committed comes
last. Its messages are kept as they came, in an anonymous temporary file per open transaction (``TMPDIR``), so
memory stays bounded by one write buffer per open transaction, and the sink does no work for a transaction that may
still roll back. At Stream Commit they are read back in order and applied like a protocol 1 transaction, in the sink
transaction that also commits the checkpoint (exactly once). A Stream Abort drops the transaction; the abort of a
subtransaction (ROLLBACK TO SAVEPOINT) drops the messages that carry its xid. PostgreSQL's own subscriber spools
streamed transactions to files the same way.

Nothing here has to outlive the process: after a restart the source sends every transaction that committed after
the sink checkpoint again from its first block. The files are unlinked when created, so a killed run leaves none.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from itertools import chain
from typing import IO

from airflow_connectors.cdc.engine.interface import TransientEngineError
from airflow_connectors.cdc.engine.pgoutput import split_streamed, streamed_xid

READ_BYTES = 1 << 20  # read back in blocks of this size
WRITE_BYTES = 1 << 20  # messages gathered in memory per open transaction before they are written to its spool
_LENGTH = struct.Struct("!I")
# Relation and Type messages describe a table, they change nothing: one sent inside a subtransaction that is then
# rolled back still describes the rows that follow (the walsender sends a schema once per streamed transaction).
_DESCRIPTIONS = frozenset(b"RY")


class _Spool:
    """One open transaction: its file, what is not in it yet, and its subtransactions rolled back."""

    __slots__ = ("aborted", "file", "unwritten", "unwritten_bytes")

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.unwritten: list[bytes] = []  # messages not in the file yet
        self.unwritten_bytes = 0
        self.aborted: set[int] = set()

    def write(self) -> None:
        """The unwritten messages, each after its length (framed here, in one go, rather than per message)."""
        messages, self.unwritten, self.unwritten_bytes = self.unwritten, [], 0
        try:
            lengths = map(_LENGTH.pack, map(len, messages))
            self.file.write(b"".join(chain.from_iterable(zip(lengths, messages, strict=True))))
        except OSError as exc:
            raise _spool_error(exc) from None


class StreamedTransactions:
    """The open streamed transactions of one stream, each in its own spool file."""

    def __init__(self) -> None:
        self.spools: dict[int, _Spool] = {}  # xid -> its spool

    def __contains__(self, xid: int) -> bool:
        return xid in self.spools

    def __len__(self) -> int:
        return len(self.spools)

    def start(self, xid: int, first_segment: bool) -> None:
        if first_segment:
            self.discard(xid)  # a transaction sent again from its beginning
        if xid not in self.spools:
            try:
                self.spools[xid] = _Spool(tempfile.TemporaryFile(prefix="cdc-streamed-"))
            except OSError as exc:
                raise _spool_error(exc) from None

    def add(self, xid: int, message: bytes) -> None:
        """A message of the stream block of ``xid``, as received (its own xid still inside)."""
        spool = self.spools[xid]
        spool.unwritten.append(message)
        spool.unwritten_bytes += len(message)
        if spool.unwritten_bytes >= WRITE_BYTES:
            spool.write()

    def abort(self, xid: int, subxid: int) -> None:
        if subxid == xid:
            self.discard(xid)
        elif xid in self.spools:
            self.spools[xid].aborted.add(subxid)

    def commit(self, xid: int) -> Iterator[bytes]:
        """The committed transaction's messages in source order, in protocol 1 form; forgets it once read."""
        spool = self.spools.get(xid)
        if spool is None:
            return
        try:
            spool.write()
            spool.file.seek(0)
            for message in _unpack(spool.file):
                if not _dropped(message, spool.aborted):
                    yield split_streamed(message)[1]
        finally:
            self.discard(xid)

    def discard(self, xid: int) -> None:
        spool = self.spools.pop(xid, None)
        if spool is not None:
            spool.file.close()

    def close(self) -> None:
        for xid in list(self.spools):
            self.discard(xid)


def _spool_error(exc: OSError) -> TransientEngineError:
    return TransientEngineError(
        f"cannot spool a transaction streamed while in progress to {tempfile.gettempdir()}: {exc.strerror or exc};"
        " give that directory room for the largest transaction in flight, or point TMPDIR elsewhere"
    )


def _dropped(message: bytes, aborted: set[int]) -> bool:
    return bool(aborted) and message[0] not in _DESCRIPTIONS and streamed_xid(message) in aborted


def _unpack(spool: IO[bytes]) -> Iterator[bytes]:
    """The length-prefixed messages of ``spool``, read in blocks (a message may span blocks)."""
    buffer = b""
    pos = 0
    while True:
        block = spool.read(READ_BYTES)
        if not block:
            return
        buffer = buffer[pos:] + block
        pos, end = 0, len(buffer)
        while pos + 4 <= end:
            (length,) = _LENGTH.unpack_from(buffer, pos)
            if pos + 4 + length > end:
                break
            yield buffer[pos + 4 : pos + 4 + length]
            pos += 4 + length
