"""The scenarios, each against its baselines measured in the same run on the same servers, and each measured for our
engine both ways (alone, and through the service API as users run it: see ``bench.ours``).

When our run fails, the scenario keeps its baselines and records why that figure is missing (``errors``) instead of
aborting the whole benchmark.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.harness import Bench, OursFailed, follow, say, wait_until
from bench.ours import Ours


def _verify(bench: Bench, database: str, who: str) -> None:
    """Both sides equal after the measurement (checked outside the timed section)."""
    wait_until(lambda: bench.same_as_source(database), timeout=120, every=0.5)
    say(f"  {who}: sink equals source")


def _ours_equal(bench: Bench, database: str, how: str) -> None:
    try:
        _verify(bench, database, f"ours ({how})")
    except TimeoutError:
        raise OursFailed("the sink differs from the source after our run") from None


class _Running:
    def __init__(self, connector_id: str) -> None:
        self.connector_id = connector_id
        self.peak_rss_mb = 0.0


@contextmanager
def running(bench: Bench, way: Ours, database: str, before: str) -> Iterator[_Running]:
    """A continuous run of ours, streaming live (its slot active) inside the block and stopped after it."""
    run = way.continuous(database)
    handle = _Running(run.connector_id)
    try:
        streaming = bench.ours_streaming(run.connector_id)
        wait_until(lambda: streaming() or not run.alive(), timeout=120)
        if not run.alive():
            raise OursFailed(f"the continuous run ended before {before}")
        yield handle
    finally:
        handle.peak_rss_mb = run.stop()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def snapshot(bench: Bench, ways: list[Ours], repeat: int) -> dict[str, Any]:
    """Initial copy of the table: raw binary COPY pipe, native initial sync, our catch-up run (median of ``repeat``)."""
    samples: dict[str, list[float]] = {"copy_pipe_s": [], "native_s": []}
    samples.update({f"{way.how}_s": [] for way in ways})
    rss: dict[str, float] = {}
    errors: dict[str, str] = {}
    for attempt in range(1, repeat + 1):
        say(f"snapshot of {bench.rows:,} rows, round {attempt}/{repeat}: raw COPY pipe")
        samples["copy_pipe_s"].append(bench.copy_pipe())
        say("  native logical replication initial sync")
        samples["native_s"].append(bench.subscribe("snap_native"))
        _verify(bench, "snap_native", "native")
        bench.unsubscribe("snap_native")
        for way in ways:
            if way.how in errors:
                continue
            say(f"  ours ({way.how}): catch-up run on an empty sink")
            database = f"snap_{way.how}"
            try:
                bench.fresh(bench.sink, database)
                report = way.catch_up(database)
                _ours_equal(bench, database, way.how)
                samples[f"{way.how}_s"].append(report["seconds"])
                rss[way.how] = max(rss.get(way.how, 0.0), report["rss_mb"])
            except OursFailed as exc:
                errors[way.how] = str(exc)
            finally:
                way.forget(database)
    return {
        "rows": bench.rows,
        **{key: _median(values) for key, values in samples.items()},
        "samples": samples,
        "rss_mb": rss,
        "errors": errors,
    }


def big_update(bench: Bench, ways: list[Ours]) -> dict[str, Any]:
    """One UPDATE of every row in one transaction. Native: a subscription (``streaming = on``) applies it; times from
    the UPDATE's start until the sink shows it. Ours: a catch-up run started after COMMIT (UPDATE start -> run done)
    and a continuous run active throughout (UPDATE start -> visible in the sink)."""
    say(f"one {bench.rows:,}-row UPDATE: native subscription")
    bench.subscribe("upd_native")
    native_update = bench.update_all()
    wait_until(bench.row_a_is("upd_native", native_update["a"]), every=0.01)
    done = time.perf_counter()
    _verify(bench, "upd_native", "native")
    bench.unsubscribe("upd_native")
    bench.vacuum_source()  # every UPDATE starts from a table as clean as the first one did
    result: dict[str, Any] = {
        "rows": bench.rows,
        "native_from_start_s": done - native_update["started_at"],
        "native_from_commit_s": done - native_update["committed_at"],
        "native_update_s": native_update["update_s"],
        "wal_bytes": native_update["wal_bytes"],
        "catch_up": {},
        "continuous": {},
        "rss_mb": {},
        "errors": {},
    }
    for way in ways:
        database = f"updc_{way.how}"
        try:
            say(f"  ours ({way.how}): initial snapshot, UPDATE, then a catch-up run")
            bench.fresh(bench.sink, database)
            initial = way.catch_up(database)
            update = bench.update_all()
            report = way.catch_up(database)
            _ours_equal(bench, database, way.how)
            result["catch_up"][way.how] = {
                "from_start_s": update["update_s"] + report["seconds"],
                "run_s": report["seconds"],
                "update_s": update["update_s"],
                "rows": report["rows"],
                **({"cpu_s": report["cpu_s"]} if report.get("cpu_s") is not None else {}),
            }
            result["rss_mb"][way.how] = max(initial["rss_mb"], report["rss_mb"])
        except OursFailed as exc:
            result["errors"][f"catch_up {way.how}"] = str(exc)
        finally:
            way.forget(database)
            bench.vacuum_source()
        database = f"updk_{way.how}"
        try:
            say(f"  ours ({way.how}): initial snapshot, continuous run, UPDATE")
            bench.fresh(bench.sink, database)
            initial = way.catch_up(database)
            with running(bench, way, database, "the UPDATE") as run:
                update = bench.update_all()
                wait_until(bench.row_a_is(database, update["a"]), every=0.01)
                done = time.perf_counter()
                _ours_equal(bench, database, way.how)
            rss = run.peak_rss_mb
            result["continuous"][way.how] = {
                "from_start_s": done - update["started_at"],
                "from_commit_s": done - update["committed_at"],
                "update_s": update["update_s"],
            }
            result["rss_mb"][way.how] = max(result["rss_mb"].get(way.how, 0.0), initial["rss_mb"], rss)
        except OursFailed as exc:
            result["errors"][f"continuous {way.how}"] = str(exc)
        finally:
            way.forget(database)
            bench.vacuum_source()
    return result


def stream_lag(bench: Bench, ways: list[Ours], transactions: int) -> dict[str, Any]:
    """pgbench single-row transactions while replication runs; lag left when the load ends (bytes and seconds)."""
    say(f"{transactions:,} single-row transactions: native subscription")
    bench.subscribe("lag_native")
    native_load = bench.pgbench(transactions)
    native = follow(bench.native_position("lag_native"), bench.wal_insert_lsn())
    _verify(bench, "lag_native", "native")
    bench.unsubscribe("lag_native")
    result: dict[str, Any] = {
        "transactions": transactions,
        "native_load": native_load,
        "native": vars(native),
        "ours": {},
        "ours_load": {},
        "rss_mb": {},
        "errors": {},
    }
    for way in ways:
        database = f"lag_{way.how}"
        try:
            say(f"  ours ({way.how}): initial snapshot, continuous run, pgbench load")
            bench.fresh(bench.sink, database)
            initial = way.catch_up(database)
            with running(bench, way, database, "the load") as run:
                result["ours_load"][way.how] = bench.pgbench(transactions)
                caught = follow(bench.ours_position(database, run.connector_id), bench.wal_insert_lsn())
                _ours_equal(bench, database, way.how)
            result["ours"][way.how] = vars(caught)
            result["rss_mb"][way.how] = max(initial["rss_mb"], run.peak_rss_mb)
        except OursFailed as exc:
            result["errors"][way.how] = str(exc)
        finally:
            way.forget(database)
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
        _ours_equal(bench, "bench_ours_v", "engine")
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
