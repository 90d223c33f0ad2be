"""The pgoutput decoder on hand-built messages (no database): the protocol 2 messages that frame a transaction
streamed while in progress, and the xid a message carries inside a stream block. Each test runs on both
implementations of the hot path (``hot_path``)."""

from __future__ import annotations

import struct

from airflow_connectors.cdc.engine._accel import HotPath
from airflow_connectors.cdc.engine.pgoutput import (
    Insert,
    Relation,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    split_streamed,
    streamed_xid,
)


def test_stream_start_first_and_later_segments(hot_path: HotPath) -> None:
    assert hot_path.decode(b"S" + struct.pack("!IB", 4_000_000_000, 1)) == StreamStart(4_000_000_000, True)
    assert hot_path.decode(b"S" + struct.pack("!IB", 77, 0)) == StreamStart(77, False)


def test_stream_stop(hot_path: HotPath) -> None:
    assert hot_path.decode(b"E") == StreamStop()


def test_stream_commit(hot_path: HotPath) -> None:
    message = b"c" + struct.pack("!IBQQq", 912, 0, 0x1_0000_0010, 0x1_0000_0090, 123456)
    assert hot_path.decode(message) == StreamCommit(912, 0x1_0000_0010, 0x1_0000_0090)


def test_stream_abort_of_a_transaction_and_of_a_subtransaction(hot_path: HotPath) -> None:
    assert hot_path.decode(b"A" + struct.pack("!II", 900, 900)) == StreamAbort(900, 900)
    assert hot_path.decode(b"A" + struct.pack("!II", 900, 901)) == StreamAbort(900, 901)


def test_a_streamed_change_is_a_protocol_1_change_behind_its_xid(hot_path: HotPath) -> None:
    body = struct.pack("!I", 16384) + b"N" + struct.pack("!h", 2) + b"t" + struct.pack("!i", 2) + b"42" + b"n"
    streamed = b"I" + struct.pack("!I", 5001) + body
    assert streamed_xid(streamed) == 5001
    xid, plain = split_streamed(streamed)
    assert xid == 5001 and plain == b"I" + body
    assert hot_path.decode(plain) == Insert(16384, (b"42", None))


def test_a_streamed_relation_message(hot_path: HotPath) -> None:
    column = b"\x01id\x00" + struct.pack("!Ii", 23, -1)
    body = struct.pack("!I", 16384) + b"public\x00t\x00d" + struct.pack("!h", 1) + column
    _, plain = split_streamed(b"R" + struct.pack("!I", 7) + body)
    assert hot_path.decode(plain) == Relation(16384, "public", "t", "d", [("id", 23, -1, True)])
