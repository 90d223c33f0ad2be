"""The compiled hot path against its pure-Python reference, on random changes (no database): the same decoded
changes, the same COPY lines (binary staging, text, text staging) byte for byte, and changes folded per key alike.
And which implementation the engine runs: the compiled one when built, the pure one when ``CDC_PURE_PYTHON`` says
so."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_connectors.cdc.engine import _accel
from airflow_connectors.cdc.engine.copy_format import INT16
from airflow_connectors.cdc.engine.pgoutput import UNCHANGED, Delete, Insert, Row, Update, Value
from tests.cdc.engine.conftest import compiled_hot_path

# Values as pgoutput sends them: NULL, an unchanged TOASTed value, or bytes (text format: any byte but NUL, with
# the ones COPY text must escape made likely; binary format: any byte).
TEXT = st.binary(max_size=40).map(lambda raw: raw.replace(b"\x00", b"\\")) | st.sampled_from(
    [b"", b"\\", b"\t", b"\n", b"\r", b"a\\tb\tc\nd\re", b"\\N"]
)
VALUES = st.one_of(st.none(), st.just(UNCHANGED), TEXT, st.binary(max_size=64))
ROWS = st.lists(VALUES, max_size=12).map(tuple)
RELIDS = st.integers(0, 2**32 - 1)


def tuple_data(row: Row, binary: bool) -> bytes:
    parts = [INT16.pack(len(row))]
    for value in row:
        if value is None:
            parts.append(b"n")
        elif value is UNCHANGED:
            parts.append(b"u")
        else:
            assert isinstance(value, bytes)
            parts += [b"b" if binary else b"t", struct.pack("!i", len(value)), value]
    return b"".join(parts)


@st.composite
def changes(draw: st.DrawFn) -> tuple[bytes, Insert | Update | Delete]:
    """A pgoutput Insert, Update (without, with a key, with a whole old row) or Delete, and what it decodes to."""
    kind, relid, binary = draw(st.sampled_from("IUD")), draw(RELIDS), draw(st.booleans())
    head = kind.encode() + struct.pack("!I", relid)
    new = draw(ROWS)
    if kind == "I":
        return head + b"N" + tuple_data(new, binary), Insert(relid, new)
    old_kind = draw(st.sampled_from([None, "K", "O"] if kind == "U" else ["K", "O"]))
    old = draw(ROWS) if old_kind else None
    old_part = old_kind.encode() + tuple_data(old, binary) if old_kind and old is not None else b""
    if kind == "U":
        return head + old_part + b"N" + tuple_data(new, binary), Update(relid, old, old_kind == "K", new)
    assert old is not None
    return head + old_part, Delete(relid, old, old_kind == "K")


@settings(max_examples=500, deadline=None)
@given(changes())
def test_both_decoders_decode_a_change_alike(change: tuple[bytes, Insert | Update | Delete]) -> None:
    message, expected = change
    assert _accel.PURE.decode(message) == expected
    assert compiled_hot_path().decode(message) == expected
    streamed = message[:1] + struct.pack("!I", 4242) + message[1:]  # the same inside a stream block: xid after kind
    assert _accel.PURE.decode_streamed(streamed) == expected
    assert compiled_hot_path().decode_streamed(streamed) == expected


@settings(max_examples=150, deadline=None)
@given(changes())
def test_a_cut_message_is_refused_not_read_past(change: tuple[bytes, Insert | Update | Delete]) -> None:
    """Every truncation of a change either fails with ValueError or is itself a whole message: never a crash or a
    value read from beyond the buffer."""
    message, _ = change
    streamed = message[:1] + struct.pack("!I", 4242) + message[1:]
    for whole, first_end, name in ((message, 6, "decode"), (streamed, 10, "decode_streamed")):
        compiled, pure = getattr(compiled_hot_path(), name), getattr(_accel.PURE, name)
        for end in range(first_end, len(whole)):
            try:
                decoded = compiled(whole[:end])
            except ValueError:
                continue
            assert decoded == pure(whole[:end])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from("IUD"), ROWS)
def test_both_build_the_same_copy_lines(op: str, row: Row) -> None:
    fast = compiled_hot_path()
    field_count = INT16.pack(1 + 2 * len(row))
    all_changed = b"\t".join([b"f"] * len(row))
    assert fast.binary_line(op, row, field_count) == _accel.PURE.binary_line(op, row, field_count)
    assert fast.copy_line(row) == _accel.PURE.copy_line(row)
    assert fast.copy_line(list(row)) == _accel.PURE.copy_line(list(row))
    assert fast.staged_text_line(op, row, all_changed) == _accel.PURE.staged_text_line(op, row, all_changed)


# A change of a 4-column table keyed by columns 0 and 2, over few keys so that rows meet in a batch: (op, old, new).
KEY_POSITIONS = (0, 2)
KEY_VALUES = st.sampled_from([b"1", b"2", None])
CELLS = st.one_of(st.none(), st.just(UNCHANGED), st.sampled_from([b"x", b"y", b""]))
FOUR = st.tuples(KEY_VALUES, CELLS, KEY_VALUES, CELLS)
CHANGES = st.one_of(
    st.tuples(st.just("I"), st.none(), FOUR),
    st.tuples(st.just("U"), st.none() | FOUR | st.just((None, None, None, None)), FOUR),
    st.tuples(st.just("D"), FOUR, st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CHANGES, max_size=12))
def test_both_fold_changes_per_key_alike(changes: list[tuple[str, Row | None, Row | None]]) -> None:
    pure: dict[tuple[Value, ...], tuple[str, Row]] = {}
    fast: dict[tuple[Value, ...], tuple[str, Row]] = {}
    for op, old, new in changes:
        _accel.PURE.keyed_change(pure, KEY_POSITIONS, op, old, new)
        compiled_hot_path().keyed_change(fast, KEY_POSITIONS, op, old, new)
    assert list(fast.items()) == list(pure.items())  # the same last changes, in the same order


def test_the_last_change_of_a_key_decides_and_keeps_unchanged_values() -> None:
    """The rule itself, on the reference: an update after an insert stays an insert, its unchanged TOASTed value
    taken from the insert; a key change deletes the old key; a delete ends a key whatever came before."""
    changes: dict[tuple[Value, ...], tuple[str, Row]] = {}
    _accel.PURE.keyed_change(changes, KEY_POSITIONS, "I", None, (b"1", b"toast", b"1", b"a"))
    _accel.PURE.keyed_change(changes, KEY_POSITIONS, "U", None, (b"1", UNCHANGED, b"1", b"b"))
    assert changes == {(b"1", b"1"): ("I", (b"1", b"toast", b"1", b"b"))}
    _accel.PURE.keyed_change(changes, KEY_POSITIONS, "U", (b"1", None, b"1", None), (b"2", UNCHANGED, b"1", b"c"))
    assert list(changes.items()) == [
        ((b"1", b"1"), ("D", (b"1", None, b"1", None))),
        ((b"2", b"1"), ("U", (b"2", UNCHANGED, b"1", b"c"))),
    ]
    _accel.PURE.keyed_change(changes, KEY_POSITIONS, "D", (b"2", None, b"1", None), None)
    assert list(changes.values()) == [("D", (b"1", None, b"1", None)), ("D", (b"2", None, b"1", None))]


def test_the_applier_runs_the_chosen_implementation() -> None:
    from airflow_connectors.cdc.engine import apply

    assert apply.keyed_change is _accel.ACTIVE.keyed_change
    assert _accel.ACTIVE is (_accel.PURE if _accel.FORCED_PURE or _accel.COMPILED is None else _accel.COMPILED)


@pytest.mark.parametrize("forced", ["1", "0"])
def test_cdc_pure_python_forces_the_pure_implementation(forced: str) -> None:
    expected = "python" if forced == "1" or _accel.COMPILED is None else "cython"
    probe = (
        "from airflow_connectors.cdc.engine import _accel, stream; print(_accel.ACTIVE.name, stream.decode.__module__)"
    )
    env = {**os.environ, "CDC_PURE_PYTHON": forced}
    output = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    name, module = output.stdout.split()
    assert name == expected
    assert module == f"airflow_connectors.cdc.engine.{'pgoutput' if expected == 'python' else '_speedups'}"
