"""Decoder of the pgoutput logical replication protocol, as sent inside XLogData messages.

Version 1 messages, plus the four of version 2 that frame a transaction streamed while still in progress (Stream
Start / Stop / Commit / Abort). Inside a stream block every change, Relation, Type and Message carries the xid of
its (sub)transaction after its type byte; :func:`split_streamed` takes it out, leaving a version 1 message.

Tuple values stay bytes: text-format values are handed to the sink's COPY as they are, never parsed into Python
objects. ``UNCHANGED`` marks a TOASTed value the server did not resend because the UPDATE did not change it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT64 = struct.Struct("!q")
_UINT64 = struct.Struct("!Q")


class _Unchanged:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
Value = bytes | None | _Unchanged
Row = tuple[Value, ...]


def lsn_to_int(lsn: str) -> int:
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(slots=True)
class Begin:
    final_lsn: int
    xid: int


@dataclass(slots=True)
class Commit:
    commit_lsn: int
    end_lsn: int


@dataclass(slots=True)
class Relation:
    relid: int
    namespace: str
    name: str
    replica_identity: str
    columns: list[tuple[str, int, int, bool]]  # (name, type oid, typmod, part of the key)


@dataclass(slots=True)
class Insert:
    relid: int
    new: Row


@dataclass(slots=True)
class Update:
    relid: int
    old: Row | None  # the old key ('K') or whole old row ('O'), when the server sent one
    old_is_key: bool
    new: Row


@dataclass(slots=True)
class Delete:
    relid: int
    old: Row
    old_is_key: bool


@dataclass(slots=True)
class Truncate:
    relids: list[int]
    cascade: bool
    restart_identity: bool


@dataclass(slots=True)
class Message:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


@dataclass(slots=True)
class Other:
    kind: str  # Origin, Type: nothing to apply


@dataclass(slots=True)
class StreamStart:
    xid: int
    first_segment: bool  # the first block of this transaction: nothing of it was sent before


@dataclass(slots=True)
class StreamStop:
    pass


@dataclass(slots=True)
class StreamCommit:
    xid: int
    commit_lsn: int
    end_lsn: int


@dataclass(slots=True)
class StreamAbort:
    xid: int
    subxid: int  # == xid: the whole transaction; otherwise only that subtransaction (ROLLBACK TO SAVEPOINT)


Decoded = (
    Begin
    | Commit
    | Relation
    | Insert
    | Update
    | Delete
    | Truncate
    | Message
    | Other
    | StreamStart
    | StreamStop
    | StreamCommit
    | StreamAbort
)


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(0, pos)
    return buf[pos:end].decode(), end + 1


def _tuple(buf: bytes, pos: int) -> tuple[Row, int]:
    (count,) = _INT16.unpack_from(buf, pos)
    pos += 2
    values: list[Value] = []
    for _ in range(count):
        kind = buf[pos]
        pos += 1
        if kind == 0x6E:  # 'n'
            values.append(None)
        elif kind == 0x75:  # 'u'
            values.append(UNCHANGED)
        else:  # 't' or 'b'
            (length,) = _INT32.unpack_from(buf, pos)
            pos += 4
            values.append(buf[pos : pos + length])
            pos += length
    return tuple(values), pos


def streamed_xid(buf: bytes) -> int:
    """The xid of the (sub)transaction of a message sent inside a stream block."""
    return int(_UINT32.unpack_from(buf, 1)[0])


def split_streamed(buf: bytes) -> tuple[int, bytes]:
    """A message sent inside a stream block as (the xid of its (sub)transaction, the same message in version 1)."""
    return streamed_xid(buf), buf[:1] + buf[5:]


def decode_streamed(buf: bytes) -> Decoded:
    """A message sent inside a stream block, decoded as its protocol 1 form."""
    return decode(split_streamed(buf)[1])


def decode(buf: bytes) -> Decoded:
    """One pgoutput message (the payload of an XLogData message)."""
    kind = buf[0:1]
    if kind == b"I":
        (relid,) = _UINT32.unpack_from(buf, 1)
        new, _ = _tuple(buf, 6)  # skip the 'N'
        return Insert(relid, new)
    if kind == b"U":
        (relid,) = _UINT32.unpack_from(buf, 1)
        pos, old, old_is_key = 5, None, False
        if buf[pos : pos + 1] in (b"K", b"O"):
            old_is_key = buf[pos : pos + 1] == b"K"
            old, pos = _tuple(buf, pos + 1)
        new, _ = _tuple(buf, pos + 1)  # skip the 'N'
        return Update(relid, old, old_is_key, new)
    if kind == b"D":
        (relid,) = _UINT32.unpack_from(buf, 1)
        old, _ = _tuple(buf, 6)
        return Delete(relid, old, buf[5:6] == b"K")
    if kind == b"B":
        final_lsn, _, xid = struct.unpack_from("!QqI", buf, 1)
        return Begin(final_lsn, xid)
    if kind == b"C":
        commit_lsn, end_lsn = struct.unpack_from("!QQ", buf, 2)
        return Commit(commit_lsn, end_lsn)
    if kind == b"R":
        (relid,) = _UINT32.unpack_from(buf, 1)
        namespace, pos = _string(buf, 5)
        name, pos = _string(buf, pos)
        identity = chr(buf[pos])
        (count,) = _INT16.unpack_from(buf, pos + 1)
        pos += 3
        columns = []
        for _ in range(count):
            flags = buf[pos]
            column, pos = _string(buf, pos + 1)
            type_oid, typmod = struct.unpack_from("!Ii", buf, pos)
            pos += 8
            columns.append((column, type_oid, typmod, bool(flags & 1)))
        return Relation(relid, namespace or "pg_catalog", name, identity, columns)
    if kind == b"T":
        (count,) = _INT32.unpack_from(buf, 1)
        options = buf[5]
        relids = list(struct.unpack_from(f"!{count}I", buf, 6))
        return Truncate(relids, bool(options & 1), bool(options & 2))
    if kind == b"M":
        flags = buf[1]
        (lsn,) = _UINT64.unpack_from(buf, 2)
        prefix, pos = _string(buf, 10)
        (length,) = _INT32.unpack_from(buf, pos)
        return Message(bool(flags & 1), lsn, prefix, buf[pos + 4 : pos + 4 + length])
    if kind in (b"O", b"Y"):
        return Other(kind.decode())
    if kind == b"S":
        xid, first = struct.unpack_from("!IB", buf, 1)
        return StreamStart(xid, first == 1)
    if kind == b"E":
        return StreamStop()
    if kind == b"c":
        xid, _, commit_lsn, end_lsn = struct.unpack_from("!IBQQ", buf, 1)
        return StreamCommit(xid, commit_lsn, end_lsn)
    if kind == b"A":  # protocol 4 with parallel streaming appends the abort LSN and time: not requested
        xid, subxid = struct.unpack_from("!II", buf, 1)
        return StreamAbort(xid, subxid)
    raise ValueError(f"unknown pgoutput message {kind!r}")
