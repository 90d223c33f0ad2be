"""Which implementation of the stream's hot path runs: compiled or pure Python, decided once, here.

The hot path is decoding pgoutput changes, folding them per key into a batch and turning its rows into the sink's
COPY lines. Its reference is the pure-Python code where each function lives (``pgoutput``, ``last_change``,
``copy_format``);
``_speedups`` is the same in Cython, built by ``setup.py`` when a C compiler is there at install (like psycopg's
optional ``psycopg_c``). The compiled one is used when it was built, unless ``CDC_PURE_PYTHON`` is set to anything
but ``0`` or empty, which is how the pure path is tested and how to rule the extension out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from airflow_connectors.cdc.engine import copy_format, last_change, pgoutput


@dataclass(frozen=True)
class HotPath:
    name: str
    decode: Callable[[bytes], pgoutput.Decoded]
    decode_streamed: Callable[[bytes], pgoutput.Decoded]
    binary_line: Callable[[str, pgoutput.Row, bytes], bytes]
    copy_line: Callable[[tuple[pgoutput.Value, ...] | list[pgoutput.Value]], bytes]
    staged_text_line: Callable[[str, pgoutput.Row, bytes], bytes]
    keyed_change: Callable[[last_change.Changes, tuple[int, ...], str, pgoutput.Row | None, pgoutput.Row | None], None]


PURE = HotPath(
    "python",
    pgoutput.decode,
    pgoutput.decode_streamed,
    copy_format.binary_line,
    copy_format.copy_line,
    copy_format.staged_text_line,
    last_change.keyed_change,
)
try:
    from airflow_connectors.cdc.engine import _speedups
except ImportError:  # not built: no compiler at install, or an install from a pure wheel
    COMPILED: HotPath | None = None
else:
    COMPILED = HotPath(
        "cython",
        _speedups.decode,
        _speedups.decode_streamed,
        _speedups.binary_line,
        _speedups.copy_line,
        _speedups.staged_text_line,
        _speedups.keyed_change,
    )

FORCED_PURE = os.environ.get("CDC_PURE_PYTHON", "") not in ("", "0")
ACTIVE = PURE if FORCED_PURE or COMPILED is None else COMPILED

decode = ACTIVE.decode
decode_streamed = ACTIVE.decode_streamed
binary_line = ACTIVE.binary_line
copy_line = ACTIVE.copy_line
staged_text_line = ACTIVE.staged_text_line
keyed_change = ACTIVE.keyed_change
