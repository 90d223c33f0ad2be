"""The stream's hot path alone, compiled vs pure Python (``python -m bench.decode_micro [--messages N] [--callgrind]``).

Builds N pgoutput Update messages of the bench table ``t(id bigint pk, a bigint, b float8, c text, d date, e text)``
in binary format (one in ten ``c`` NULL, one in twenty ``e`` an unchanged TOASTed value), then, in one child
process per implementation (``CDC_PURE_PYTHON`` picks it, as in the engine), runs the engine's own code on them:

- ``decode``: ``decode`` of every message;
- ``decode+rows``: what the compiled path covers: ``decode``, the relation's column mapping, folding the change
  into a batch by its key (``keyed_change``) and the COPY BINARY staging line (``binary_line``) of every change;
- ``stream path``: what the stream does per change before the sink: ``decode``, the column mapping,
  ``Applier.change`` (counters, last change per key), and every 50,000 changes (the default batch) the staging line
  of each buffered change, as ``Applier._apply_keyed`` builds them.

No database: this is the CPU the engine spends per change, the part the compiled path can change. Times are the
process's CPU time (``time.process_time``), best of ``--repeat`` runs: on a shared 2-core machine wall time mostly
measures the neighbours. ``--callgrind`` counts instructions instead (valgrind; deterministic, ~50x slower: use
fewer messages): a child's total minus that of a child that only builds the messages. Prints a table and one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import random
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

TABLE_OID = 16384
BATCH = 50_000
STAGES = ("decode", "decode+rows", "stream path")


def messages(count: int) -> list[bytes]:
    rng = random.Random(14)
    out = []
    for i in range(count):
        values: list[bytes | None | str] = [
            struct.pack("!q", i),
            struct.pack("!q", rng.randrange(1 << 40)),
            struct.pack("!d", rng.random()),
            None if i % 10 == 0 else f"text value {rng.randrange(10**6)}".encode(),
            struct.pack("!i", rng.randrange(9000)),
            "u" if i % 20 == 0 else f"another, longer text value {i}".encode(),
        ]
        parts = [b"U", struct.pack("!I", TABLE_OID), b"N", struct.pack("!h", len(values))]
        for value in values:
            if value is None:
                parts.append(b"n")
            elif value == "u":
                parts.append(b"u")
            else:
                assert isinstance(value, bytes)
                parts += [b"b", struct.pack("!i", len(value)), value]
        out.append(b"".join(parts))
    return out


def stages(data: list[bytes]) -> dict[str, Callable[[], None]]:
    """The steps to measure, with the implementation ``_accel`` chose in this process."""
    from airflow_connectors.cdc.engine import _accel
    from airflow_connectors.cdc.engine.apply import Applier
    from airflow_connectors.cdc.engine.copy_format import INT16
    from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan

    columns = [("id", "bigint", 20), ("a", "bigint", 20), ("b", "double precision", 701)]
    columns += [("c", "text", 25), ("d", "date", 1082), ("e", "text", 25)]
    plan = TablePlan(
        "public",
        "t",
        "replica",
        "t",
        tuple(ColumnPlan(name, kind, kind, oid, name == "id") for name, kind, oid in columns),
        ("id",),
        "d",
        "r",
        True,
    )
    decode, binary_line, keyed_change = _accel.decode, _accel.binary_line, _accel.keyed_change
    pick = operator.itemgetter(*range(len(columns)))  # the stream's column mapping (stream.relation)
    field_count = INT16.pack(1 + 2 * len(columns))

    def decode_only() -> None:
        for message in data:
            decode(message)

    def decode_and_rows() -> None:
        changes: dict[Any, Any] = {}
        for message in data:
            row = pick(decode(message).new)  # type: ignore[union-attr]
            keyed_change(changes, plan.key_positions, "U", None, row)
            binary_line("U", row, field_count)
            if len(changes) >= BATCH:
                changes.clear()

    def stream_path() -> None:
        applier = Applier(None, binary=True)  # type: ignore[arg-type]  # no sink: nothing is written
        lines = 0
        for message in data:
            change = decode(message)
            applier.change(plan, "U", None, pick(change.new), len(message))  # type: ignore[union-attr]
            if applier.rows >= BATCH:
                batch = applier.batches[plan.name]
                lines += len([binary_line(op, row, field_count) for op, row in batch.changes.values()])
                batch.changes.clear()
                applier.rows = 0
        batch = applier.batches[plan.name]
        lines += len([binary_line(op, row, field_count) for op, row in batch.changes.values()])
        assert lines == len(data)

    return dict(zip(STAGES, (decode_only, decode_and_rows, stream_path), strict=True))


def child(count: int, repeat: int, only: str | None) -> dict[str, Any]:
    from airflow_connectors.cdc.engine import _accel

    data = messages(count)
    result: dict[str, Any] = {"implementation": _accel.ACTIVE.name}
    for name, step in stages(data).items():
        if only is not None and name != only:
            continue
        times = []
        for _ in range(repeat):
            started = time.process_time()
            step()
            times.append(time.process_time() - started)
        result[name] = min(times)
    return result


def run_child(pure: bool, arguments: list[str], callgrind: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench.decode_micro", "--child", *arguments]
    if callgrind:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command]
    env = {**os.environ, "CDC_PURE_PYTHON": "1" if pure else "0"}
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True)


def instructions(pure: bool, count: int, stage: str) -> int:
    """Instructions of one child that builds ``count`` messages and runs ``stage`` once ("none": only builds)."""
    output = run_child(pure, [f"--messages={count}", "--repeat=1", f"--only={stage}"], callgrind=True)
    return int(re.findall(r"Collected : (\d+)", output.stderr)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="count instructions with valgrind instead of time")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=[*STAGES, "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.messages, args.repeat, args.only)))
        return
    from airflow_connectors.cdc.engine import _accel

    if _accel.COMPILED is None:
        sys.exit("the compiled hot path is not built (pip install -e . with a C compiler): nothing to compare")
    runs: dict[str, dict[str, float]] = {}
    if args.callgrind:
        for pure, name in ((True, "python"), (False, "cython")):
            base = instructions(pure, args.messages, "none")
            runs[name] = {stage: instructions(pure, args.messages, stage) - base for stage in STAGES}
        unit, scale = "instructions per message", 1 / args.messages
    else:
        for pure in (True, False):
            run = json.loads(run_child(pure, [f"--messages={args.messages}", f"--repeat={args.repeat}"]).stdout)
            runs[run.pop("implementation")] = run
        unit, scale = f"CPU seconds, best of {args.repeat}", 1.0
    python, cython = runs["python"], runs["cython"]
    print(f"{args.messages:,} Update messages, {unit}")
    print(f"{'':<14}{'python':>12}{'cython':>12}{'speedup':>10}")
    for stage in STAGES:
        ratio = python[stage] / cython[stage]
        print(f"{stage:<14}{python[stage] * scale:>12.4g}{cython[stage] * scale:>12.4g}{ratio:>9.1f}x")
    print(json.dumps({"messages": args.messages, "measure": unit, **runs}))


if __name__ == "__main__":
    main()
