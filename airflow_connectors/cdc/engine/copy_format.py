"""COPY encodings of staged changes: text lines and binary tuples built from pgoutput values without decoding them."""

from __future__ import annotations

import re
import struct

from airflow_connectors.cdc.engine.pgoutput import UNCHANGED, Row, Value

_SPECIAL = re.compile(rb"[\\\t\n\r]")
_SPECIAL_NOT_TAB = re.compile(rb"[\\\n\r]")
_ESCAPES = {ord("\\"): b"\\\\", ord("\t"): b"\\t", ord("\n"): b"\\n", ord("\r"): b"\\r"}

INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_BINARY_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_FLAG = {True: b"\x00\x00\x00\x01\x01", False: b"\x00\x00\x00\x01\x00"}


def _copy_field(value: Value) -> bytes:
    if value is None or value is UNCHANGED:
        return b"\\N"
    assert isinstance(value, bytes)
    if _SPECIAL.search(value):
        return b"".join(_ESCAPES.get(byte, bytes((byte,))) for byte in value)
    return value


def binary_line(op: str, row: Row, field_count: bytes) -> bytes:
    """One COPY BINARY tuple of the staging table: op, the values as pgoutput sent them (the types' send format,
    spliced without decoding), then one "unchanged" flag per value."""
    parts = [field_count, b"\x00\x00\x00\x01", op.encode()]
    for value in row:
        if value is None or value is UNCHANGED:
            parts.append(_NULL)
        else:
            parts.append(_INT32.pack(len(value)))  # type: ignore[arg-type]
            parts.append(value)  # type: ignore[arg-type]
    parts.extend(_FLAG[value is UNCHANGED] for value in row)
    return b"".join(parts)


def copy_line(fields: tuple[Value, ...] | list[Value]) -> bytes:
    """One line of COPY text format. Most rows hold no byte that needs escaping: check them all at once."""
    if None not in fields and UNCHANGED not in fields:
        line = b"\t".join(fields)  # type: ignore[arg-type]
        if not _SPECIAL_NOT_TAB.search(line) and line.count(b"\t") == len(fields) - 1:  # no tab inside a value
            return line + b"\n"
    return b"\t".join(map(_copy_field, fields)) + b"\n"


def staged_text_line(op: str, row: Row, all_changed: bytes) -> bytes:
    """One text-format line of the staging table: op, the values, then the "unchanged" flags."""
    flags = b"\t".join(b"t" if value is UNCHANGED else b"f" for value in row) if UNCHANGED in row else all_changed
    return op.encode() + b"\t" + copy_line(row)[:-1] + b"\t" + flags + b"\n"
