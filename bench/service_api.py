"""Our engine as users run it: ``airflow-connectors-cdc serve`` with its run workers, driven over HTTP like a DAG.

The service keeps its state store in its own database on the sink cluster. A connector is created with POST, a run
is started with POST and polled (every 100 ms: faster polling would itself load the service on a small machine)
until it is terminal; the time is from the POST to the first poll that sees the run finished. The peak RSS is
summed over the service process and its run workers (sampled while a run is active), since that is what the
service costs a machine.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from psycopg.conninfo import conninfo_to_dict

from airflow_connectors.cdc.connectors.secrets import SecretBox
from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"succeeded", "failed", "cancelled"}
POLL_SECONDS = 0.1


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the run workers), from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(child) for child in children)
    return total


class ServiceProcess:
    """One service process (API + ``workers`` run worker processes) on a state database of ``cluster``."""

    def __init__(self, cluster: EmbeddedPostgres, workers: int = 2) -> None:
        state = cluster.create_database(f"cdc_state_{secrets.token_hex(4)}")
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        env = {
            **os.environ,
            "CDC_STATE_DSN": state,
            "CDC_API_TOKEN": self.token,
            "CDC_SECRET_KEY": SecretBox.generate_key(),
        }
        command = [sys.executable, "-m", "airflow_connectors.cdc.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stdout=self.log, stderr=self.log, cwd=ROOT
        )
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        self.api = f"http://127.0.0.1:{self.port}/api/v1"
        self.peak_rss_mb = 0.0
        self._wait_healthy()
        self._wait_workers(cluster, state, workers)

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}: {self.tail()}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service did not become healthy: {self.tail()}")

    def _wait_workers(self, cluster: EmbeddedPostgres, state: str, workers: int, timeout: float = 120.0) -> None:
        """Until every run worker listens for new runs (spawned processes take seconds to import on a busy machine):
        otherwise the first measured run would include the workers' start."""
        database = str(conninfo_to_dict(state)["dbname"])
        deadline = time.monotonic() + timeout
        with cluster.connect(autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN %%'", (database,)
                ).fetchone()
                if row is not None and row[0] >= workers:
                    return
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the service's run workers did not start: {self.tail()}")
                time.sleep(0.1)

    def tail(self) -> str:
        self.log.seek(0)
        return " | ".join(self.log.read().decode(errors="replace").strip().splitlines()[-5:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    # -- the API -------------------------------------------------------------------------------------------------
    def create_connector(self, document: dict[str, Any]) -> str:
        body = {**document, "id": ""}  # the server chooses the id
        response = self.http.post(f"{self.api}/connectors", json=body, timeout=60)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"connector refused: {response.status_code} {response.text[:300]}")
        return str(response.json()["connector"]["id"])

    def delete_connector(self, connector_id: str) -> None:
        self.http.delete(f"{self.api}/connectors/{connector_id}", timeout=60)

    def start_run(self, connector_id: str, mode: str = "catch_up") -> str:
        response = self.http.post(f"{self.api}/connectors/{connector_id}/runs", json={"mode": mode}, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"run refused: {response.status_code} {response.text[:300]}")
        return str(response.json()["run_id"])

    def run_state(self, connector_id: str, run_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.api}/connectors/{connector_id}/runs/{run_id}", timeout=60)
        response.raise_for_status()
        return dict(response.json())

    def cancel(self, connector_id: str, run_id: str) -> None:
        self.http.post(f"{self.api}/connectors/{connector_id}/runs/{run_id}/cancel", timeout=60)

    def wait_run(self, connector_id: str, run_id: str, timeout: float = 1800) -> dict[str, Any]:
        """Poll until the run is terminal, sampling the service's memory meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run_state(connector_id, run_id)
            if run["state"] in TERMINAL:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    def timed_run(self, connector_id: str, mode: str = "catch_up", timeout: float = 1800) -> dict[str, Any]:
        """Start a run and wait for it: seconds from the POST to the first poll that sees it finished."""
        sampler = _Sampler(self)
        started = time.perf_counter()
        run_id = self.start_run(connector_id, mode)
        try:
            run = self.wait_run(connector_id, run_id, timeout)
        finally:
            sampler.stop()
        return {"seconds": time.perf_counter() - started, "run": run, "rss_mb": sampler.peak}


class _Sampler(threading.Thread):
    """Samples the service's RSS every 100 ms while a run is active (ru_maxrss does not cover other processes)."""

    def __init__(self, service: ServiceProcess) -> None:
        super().__init__(daemon=True)
        self.service, self.peak = service, 0.0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.peak = max(self.peak, _rss_mb(self.service.process.pid))

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.service.peak_rss_mb = max(self.service.peak_rss_mb, self.peak)
