"""The stream's hot path alone, compiled vs pure Python (``python -m bench.decode_micro [--messages N]``).

Builds N pgoutput Update messages of the bench table ``t(id bigint pk, a bigint, b float8, c text, d date, e text)``
in binary format (one in ten ``c`` NULL, one in twenty ``e`` an unchanged TOASTed value), then, in one child
process per implementation (``CDC_PURE_PYTHON`` picks it, as in the engine), times the engine's own code on them:

- ``decode``: ``decode`` of every message;
- ``stream path``: what the stream does per change before the sink: ``decode``, the relation's column mapping,
  ``Applier.update`` (key, last change per key), and every 50,000 changes (the default batch) the COPY BINARY
  staging line of each buffered change, as ``Applier._apply_keyed`` builds them.

No database: this is the CPU the engine spends per change, the part the compiled path can change. Times are the
process's CPU time (``time.process_time``), best of ``--repeat`` runs: on a shared 2-core machine wall time mostly
measures the neighbours. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import random
import struct
import subprocess
import sys
import time
from typing import Any

TABLE_OID = 16384
BATCH = 50_000


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


def measure(count: int, repeat: int) -> dict[str, Any]:
    """In this process, with the implementation ``_accel`` chose."""
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
    data = messages(count)
    decode, binary_line = _accel.decode, _accel.binary_line
    pick = operator.itemgetter(*range(len(columns)))  # the stream's column mapping (stream.relation)
    field_count = INT16.pack(1 + 2 * len(columns))

    def decode_only() -> None:
        for message in data:
            decode(message)

    def stream_path() -> None:
        applier = Applier(None, binary=True)  # type: ignore[arg-type]  # no sink: nothing is written
        lines = 0
        for message in data:
            change = decode(message)
            applier.update(plan, None, pick(change.new), len(message))  # type: ignore[union-attr]
            if applier.rows >= BATCH:
                batch = applier.batches[plan.name]
                lines += len([binary_line(op, row, field_count) for op, row in batch.changes.values()])
                batch.changes.clear()
                applier.rows = 0
        batch = applier.batches[plan.name]
        lines += len([binary_line(op, row, field_count) for op, row in batch.changes.values()])
        assert lines == count

    result: dict[str, Any] = {"implementation": _accel.ACTIVE.name}
    for name, step in (("decode", decode_only), ("stream path", stream_path)):
        times = []
        for _ in range(repeat):
            started = time.process_time()
            step()
            times.append(time.process_time() - started)
        result[name] = min(times)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.messages, args.repeat)))
        return
    from airflow_connectors.cdc.engine import _accel

    if _accel.COMPILED is None:
        sys.exit("the compiled hot path is not built (pip install -e . with a C compiler): nothing to compare")
    runs = {}
    for pure in ("1", "0"):
        command = [sys.executable, "-m", "bench.decode_micro", "--child", f"--messages={args.messages}"]
        env = {**os.environ, "CDC_PURE_PYTHON": pure}
        output = subprocess.run(command + [f"--repeat={args.repeat}"], env=env, check=True, capture_output=True)
        run = json.loads(output.stdout)
        runs[run["implementation"]] = run
    python, cython = runs["python"], runs["cython"]
    print(f"{args.messages:,} Update messages, best of {args.repeat}")
    print(f"{'':<14}{'python':>10}{'cython':>10}{'speedup':>10}")
    for name in ("decode", "stream path"):
        print(f"{name:<14}{python[name]:>9.2f}s{cython[name]:>9.2f}s{python[name] / cython[name]:>9.1f}x")
    print(json.dumps({"messages": args.messages, **{name: run for name, run in runs.items()}}))


if __name__ == "__main__":
    main()
