"""Run the engine once in its own process and report its time and peak memory (``python -m bench.engine_process``).

Reads ``{"connector": {...}, "mode": "catch_up" | "continuous", "stop_file": path | null, "verify": bool}`` on
stdin; a continuous run ends when ``stop_file`` appears. Prints one JSON line ``{"seconds", "cpu_s", "max_rss_mb",
"rows", "phases", "verification"}`` (the run alone, interpreter start excluded; ``phases``: when each phase began;
``verification``: the report of a verifying run, also when it found a difference) or ``{"error"}`` with exit status 1.
Its own process, so the peak RSS is the engine's.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import uuid

from airflow_connectors.cdc.connectors.models import Connector
from airflow_connectors.cdc.engine import execute_run
from airflow_connectors.cdc.engine.interface import (
    EnginePhase,
    RunCancelled,
    RunMode,
    RunRequest,
    TableCounters,
    VerificationFailed,
)
from airflow_connectors.cdc.verification import Verification


class QuietReporter:
    """Records nothing but when each phase began: the benchmark measures the data path, not bookkeeping."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}  # phase -> seconds after the run started

    def phase(self, phase: EnginePhase) -> None:
        self.phases.setdefault(phase.value, time.perf_counter() - self.started)

    def table_progress(self, table: str, counters: TableCounters) -> None: ...

    def positions(self, **positions: str | None) -> None: ...

    def slot_health(self, *, lag_bytes: int | None, wal_status: str | None) -> None: ...

    def log(self, message: str) -> None: ...


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads): repeatable under load where wall time is not."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _dump(verification: Verification | None) -> dict[str, object] | None:
    return None if verification is None else verification.model_dump(mode="json")


def main() -> int:
    job = json.loads(sys.stdin.read())
    connector = Connector.model_validate(job["connector"])
    stop_file = job.get("stop_file")
    mode, verify = RunMode(job.get("mode", "catch_up")), bool(job.get("verify"))
    request = RunRequest(run_id=str(uuid.uuid4()), mode=mode, verify=verify)
    reporter = QuietReporter()
    cpu_before = cpu_seconds()
    rows, verification = 0, None
    try:
        result = execute_run(connector, request, reporter, lambda: bool(stop_file and os.path.exists(stop_file)))
        rows, verification = sum(counters.rows for counters in result.tables.values()), result.verification
    except RunCancelled:
        pass  # how a continuous run ends
    except VerificationFailed as exc:  # what a verifying run found is the figure, not an error of the benchmark
        verification = exc.result.verification
    except Exception as exc:  # reported to the harness, which records the figure as missing and why
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "max_rss_mb": peak_rss_mb()}), flush=True)
        return 1
    seconds = time.perf_counter() - reporter.started
    report = {
        "seconds": seconds,
        "cpu_s": cpu_seconds() - cpu_before,
        "max_rss_mb": peak_rss_mb(),
        "rows": rows,
        "phases": reporter.phases,
        "verification": _dump(verification),
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
