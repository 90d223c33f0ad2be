"""Our engine, two ways: alone (``execute_run`` in a child process) and through the service API (a connector and
runs over HTTP, as a DAG would). Every scenario measures both with the same calls.

Each sink database gets its own connector (so its own slot); :meth:`forget` drops it with its slot and publication.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.harness import Bench, EngineProcess, OursFailed
from bench.service_api import ServiceProcess, _Sampler


class Continuous(Protocol):
    connector_id: str

    def alive(self) -> bool: ...

    def stop(self) -> float:
        """Stop the run; returns the peak RSS (MB) while it ran."""
        ...


class Ours(Protocol):
    how: str  # "engine" | "api"

    def catch_up(self, sink_db: str) -> dict[str, Any]:
        """One catch-up run: ``seconds`` (as this way measures it), ``rss_mb``, ``rows``."""
        ...

    def continuous(self, sink_db: str) -> Continuous: ...

    def forget(self, sink_db: str) -> None: ...


@dataclass
class _EngineContinuous:
    process: EngineProcess
    connector_id: str

    def alive(self) -> bool:
        return self.process.alive()

    def stop(self) -> float:
        self.process.stop()
        report = self.process.result(timeout=300)
        assert self.process.stop_file is not None
        self.process.stop_file.unlink(missing_ok=True)
        return float(report["max_rss_mb"])


class EngineAlone:
    """``python -m bench.engine_process``: the run alone, timed inside its process (interpreter start excluded)."""

    how = "engine"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def catch_up(self, sink_db: str) -> dict[str, Any]:
        report = self.bench.ours(sink_db).result()
        return {"seconds": report["seconds"], "cpu_s": report.get("cpu_s"), "rss_mb": report["max_rss_mb"],
                "rows": report["rows"], "phases": report["phases"]}  # fmt: skip

    def continuous(self, sink_db: str) -> Continuous:
        stop = Path(tempfile.gettempdir()) / f"cdc-bench-stop-{time.monotonic_ns()}"
        process = self.bench.ours(sink_db, "continuous", stop)
        return _EngineContinuous(process, self.bench.connector(sink_db).id)

    def forget(self, sink_db: str) -> None:
        self.bench.forget_ours(sink_db)


@dataclass
class _ApiContinuous:
    service: ServiceProcess
    connector_id: str
    run_id: str
    sampler: _Sampler = field(init=False)

    def __post_init__(self) -> None:
        self.sampler = _Sampler(self.service)

    def alive(self) -> bool:
        return self.service.run_state(self.connector_id, self.run_id)["state"] not in ("succeeded", "failed")

    def stop(self) -> float:
        self.service.cancel(self.connector_id, self.run_id)
        run = self.service.wait_run(self.connector_id, self.run_id, timeout=300)
        self.sampler.stop()
        if run["state"] == "failed":
            raise OursFailed(f"the continuous run failed: {run['error']}")
        return self.sampler.peak


class ThroughApi:
    """``airflow-connectors-cdc serve`` (2 run workers): POST a run, poll it until it ends (every 100 ms)."""

    how = "api"

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.service = ServiceProcess(bench.sink)
        self.connectors: dict[str, str] = {}

    def close(self) -> None:
        self.service.close()

    def _connector(self, sink_db: str) -> str:
        if sink_db not in self.connectors:
            document = self.bench.connector(sink_db).stored()
            self.connectors[sink_db] = self.service.create_connector(document)
        return self.connectors[sink_db]

    def catch_up(self, sink_db: str) -> dict[str, Any]:
        timed = self.service.timed_run(self._connector(sink_db))
        run = timed["run"]
        if run["state"] != "succeeded":
            raise OursFailed(f"the run ended {run['state']}: {run['error']}")
        return {"seconds": timed["seconds"], "rss_mb": timed["rss_mb"], "rows": run["rows_total"]}

    def continuous(self, sink_db: str) -> Continuous:
        connector_id = self._connector(sink_db)
        run_id = self.service.start_run(connector_id, "continuous")
        return _ApiContinuous(self.service, connector_id, run_id)

    def forget(self, sink_db: str) -> None:
        connector_id = self.connectors.pop(sink_db, None)
        if connector_id is not None:
            self.service.delete_connector(connector_id)  # drops its slot and publication on the source
