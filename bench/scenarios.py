"""The three scenarios, each against its baselines measured in the same run on the same servers.

Our figures come from ``execute_run`` in a child process; when it fails, the scenario keeps its baselines and
records why our figure is missing (``ours_error``) instead of aborting the whole benchmark.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Bench, EngineProcess, OursFailed, follow, say, wait_until


def _verify(bench: Bench, database: str, who: str) -> None:
    """Both sides equal after the measurement (checked outside the timed section)."""
    wait_until(lambda: bench.same_as_source(database), timeout=60, every=0.5)
    say(f"  {who}: sink equals source")


def _ours_equal(bench: Bench, database: str) -> None:
    try:
        _verify(bench, database, "ours")
    except TimeoutError:
        raise OursFailed("the sink differs from the source after our run") from None


def snapshot(bench: Bench, rows: int, repeat: int) -> dict[str, Any]:
    """Initial copy of one table: raw binary COPY pipe, native initial sync, our catch-up run (median of ``repeat``)."""
    say(f"snapshot of {rows:,} rows: filling the source")
    bench.fill_source(rows)
    samples: dict[str, list[float]] = {"copy_pipe_s": [], "native_s": [], "ours_s": [], "ours_rss_mb": []}
    phases: list[dict[str, float]] = []
    error = None
    for attempt in range(1, repeat + 1):
        say(f"snapshot {rows:,} rows, round {attempt}/{repeat}: raw COPY pipe")
        samples["copy_pipe_s"].append(bench.copy_pipe())
        say("  native logical replication initial sync")
        samples["native_s"].append(bench.subscribe("bench_native"))
        _verify(bench, "bench_native", "native")
        bench.unsubscribe("bench_native")
        if error:
            continue
        say("  our engine (catch-up run)")
        try:
            bench.fresh(bench.sink, "bench_ours")
            report = bench.ours("bench_ours").result()
            _ours_equal(bench, "bench_ours")
            samples["ours_s"].append(report["seconds"])
            samples["ours_rss_mb"].append(report["max_rss_mb"])
            phases.append(report["phases"])
        except OursFailed as exc:
            error = str(exc)
        finally:
            bench.forget_ours("bench_ours")
    median = {key: statistics.median(values) if values else None for key, values in samples.items()}
    return {
        "rows": rows,
        **median,
        "ours_rss_mb": max(samples["ours_rss_mb"], default=None),
        "samples": samples,
        "ours_phases": phases,
        "ours_error": error,
    }


def big_update(bench: Bench, rows: int) -> dict[str, Any]:
    """One UPDATE of every row in one transaction: native apply vs a catch-up run started after it commits."""
    say(f"one {rows:,}-row UPDATE: filling the source, native subscription")
    bench.fill_source(rows)
    bench.subscribe("bench_native_u")
    with bench.sink_conn("bench_native_u") as conn:
        streaming = conn.execute("SELECT substream::text FROM pg_subscription WHERE subname = 'native_sub'").fetchone()
    say("  native: UPDATE, then until the sink shows it")
    native_update = bench.update_all()
    wait_until(bench.row_a_is("bench_native_u", 1), every=0.01)
    native_from_commit = time.perf_counter() - native_update.pop("committed_at")
    _verify(bench, "bench_native_u", "native")
    bench.unsubscribe("bench_native_u")
    bench.vacuum_source()  # the second UPDATE starts from a table as clean as the first one did
    result: dict[str, Any] = {
        "rows": rows,
        "native_streaming": streaming[0] if streaming else None,
        "native_update": native_update,
        "native_s": native_from_commit,
        "native_from_update_start_s": native_from_commit + native_update["update_s"],
        "ours_s": None,
        "ours_error": None,
    }
    try:
        say("  ours: initial snapshot (catch-up run)")
        bench.fresh(bench.sink, "bench_ours_u")
        initial = bench.ours("bench_ours_u").result()
        say("  ours: UPDATE, then a catch-up run")
        ours_update = bench.update_all()
        committed_at = ours_update.pop("committed_at")
        report = bench.ours("bench_ours_u").result()
        result["ours_wall_from_commit_s"] = time.perf_counter() - committed_at
        _ours_equal(bench, "bench_ours_u")
        result.update(
            ours_update=ours_update,
            ours_s=report["seconds"],
            ours_rows=report["rows"],
            ours_phases=report["phases"],
            ours_rss_mb=max(initial["max_rss_mb"], report["max_rss_mb"]),
        )
    except OursFailed as exc:
        result["ours_error"] = str(exc)
    finally:
        bench.forget_ours("bench_ours_u")
    return result


def stream_lag(bench: Bench, rows: int, transactions: int) -> dict[str, Any]:
    """pgbench single-row transactions while replication runs; lag left when the load ends (bytes and seconds)."""
    say(f"{transactions:,} single-row transactions: filling the source, native subscription")
    bench.fill_source(rows)
    bench.subscribe("bench_native_s")
    say("  native: pgbench load")
    native_load = bench.pgbench(transactions)
    target = bench.wal_insert_lsn()
    native = follow(bench.native_position("bench_native_s"), target)
    _verify(bench, "bench_native_s", "native")
    bench.unsubscribe("bench_native_s")
    result: dict[str, Any] = {
        "rows": rows,
        "transactions": transactions,
        "native_load": native_load,
        "native": vars(native),
        "ours_error": None,
    }
    stop = Path(tempfile.gettempdir()) / f"cdc-bench-stop-{time.monotonic_ns()}"
    process: EngineProcess | None = None
    try:
        say("  ours: initial snapshot (catch-up run)")
        bench.fresh(bench.sink, "bench_ours_s")
        initial = bench.ours("bench_ours_s").result()
        say("  ours: continuous run, pgbench load")
        process = bench.ours("bench_ours_s", "continuous", stop)
        streaming = bench.ours_streaming("bench_ours_s")
        wait_until(lambda: streaming() or not process.alive(), timeout=120)
        if not process.alive():
            process.result()  # raises with the run's error
        ours_load = bench.pgbench(transactions)
        target = bench.wal_insert_lsn()
        ours = follow(bench.ours_position("bench_ours_s"), target)
        _ours_equal(bench, "bench_ours_s")
        process.stop()
        report = process.result(timeout=120)
        result.update(
            ours_load=ours_load, ours=vars(ours), ours_rss_mb=max(initial["max_rss_mb"], report["max_rss_mb"])
        )
    except OursFailed as exc:
        result["ours_error"] = str(exc)
    finally:
        stop.touch()
        if process is not None and process.alive():
            process.process.wait(120)
        bench.forget_ours("bench_ours_s")
        stop.unlink(missing_ok=True)
    return result


def verify(bench: Bench, rows: int) -> dict[str, Any]:
    """Verification of a ``rows``-row replica: our verifying catch-up run vs one whole-table checksum query per
    side; then one corrupted sink row, which our verification must name."""
    say(f"verification of a {rows:,}-row replica: filling the source, our initial snapshot")
    bench.fill_source(rows)
    result: dict[str, Any] = {"rows": rows, "ours_s": None, "ours_error": None}
    try:
        bench.fresh(bench.sink, "bench_ours_v")
        bench.ours("bench_ours_v").result()
        _ours_equal(bench, "bench_ours_v")
        say("  baseline: the same row checksum, one whole-table query per side, one after the other")
        result["whole_table_s"] = bench.whole_table_checksums("bench_ours_v")
        say("  ours: a verifying catch-up run")
        report = bench.ours("bench_ours_v", verify=True).result()
        verification = report["verification"]
        if verification is None or verification["status"] != "equal":
            raise OursFailed(f"our verification did not find the replica equal: {verification}")
        table = verification["tables"]["public.bench"]
        result.update(
            ours_s=verification["seconds"],
            ours_run_s=report["seconds"],
            ours_rss_mb=report["max_rss_mb"],
            chunks=table["chunks"],
        )
        say("  ours: one sink row corrupted, verifying again")
        corrupted = rows // 2
        with bench.sink_conn("bench_ours_v") as conn:
            conn.execute("UPDATE public.bench SET b = 'corrupted' WHERE id = %s", (corrupted,))
        found = bench.ours("bench_ours_v", verify=True).result()["verification"]
        keys = found["tables"]["public.bench"]["differing_keys"] if found else []
        result["corruption_caught"] = keys == [{"key": {"id": str(corrupted)}, "issue": "different"}]
        if not result["corruption_caught"]:
            raise OursFailed(f"our verification missed the corrupted row {corrupted}: {found}")
    except OursFailed as exc:
        result["ours_error"] = str(exc)
    finally:
        bench.forget_ours("bench_ours_v")
    return result
