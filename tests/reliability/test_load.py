"""Load: a pgbench TPC-B workload (scale 10) on the source during the snapshot and while a continuous run streams;
at the end source and sink are equal. Prints changes/s applied and the lag left when the load stops."""

from __future__ import annotations

import json
import os
import subprocess
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from airflow_connectors.cdc.embedded_pg import _bin_dir
from tests.reliability.conftest import Replication

pytestmark = pytest.mark.slow

PGBENCH_TABLES = (
    "public.pgbench_accounts",
    "public.pgbench_branches",
    "public.pgbench_tellers",
    "public.pgbench_history",
)
# CDC_SOAK_SECONDS=600 turns this into a soak test (CI runs the 20-second variant).
LOAD_SECONDS = int(os.environ.get("CDC_SOAK_SECONDS", "20"))


def pgbench(r: Replication, *args: str) -> subprocess.Popen[str]:
    params = conninfo_to_dict(r.source)
    env = {"PGPASSWORD": str(params["password"]), "PATH": "/usr/bin:/bin"}
    command = [
        str(_bin_dir() / "pgbench"),
        "-h",
        "127.0.0.1",
        "-p",
        str(params["port"]),
        "-U",
        "postgres",
        *args,
        str(params["dbname"]),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def current_lsn(r: Replication) -> str:
    with psycopg.connect(r.source) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def test_pgbench_during_snapshot_and_streaming(replication: Replication) -> None:
    r = replication
    init = pgbench(r, "-i", "-s", "10", "-q")
    assert init.wait(300) == 0, init.stdout.read() if init.stdout else ""
    r.on_source("ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL")  # pgbench's history has no key
    load = pgbench(r, "-c", "2", "-j", "2", "-T", str(LOAD_SECONDS), "-n")
    started = time.monotonic()
    first = r.wait(r.start(), timeout=300)  # snapshot while pgbench writes, then stream to the fence
    assert first["state"] == "succeeded", first
    first_run_seconds = time.monotonic() - started
    continuous, continuous_started = r.start(mode="continuous"), time.monotonic()
    output = load.communicate(timeout=LOAD_SECONDS + 120)[0]
    load_ended, end_lsn = time.monotonic(), current_lsn(r)
    caught_up = r.wait(
        continuous,
        lambda run: run["applied_lsn"] is not None and lsn_value(run["applied_lsn"]) >= lsn_value(end_lsn),
        timeout=300,
    )
    caught_up_at = time.monotonic()
    lag_seconds = caught_up_at - load_ended
    r.http.post(f"{r.service.api}/connectors/{r.connector_id}/runs/{continuous}/cancel", timeout=30)
    r.wait(continuous)
    final = r.wait(r.start(), timeout=300)
    assert final["state"] == "succeeded", final
    for table in PGBENCH_TABLES:
        r.equal(table)
    tps = next((line for line in output.splitlines() if line.startswith("tps")), "tps = ?")
    changes = sum(stats["inserts"] + stats["updates"] + stats["deletes"] for stats in caught_up["tables"].values())
    figures = {
        "pgbench": tps,
        "first_run_seconds": round(first_run_seconds, 1),
        "continuous_run_changes": changes,
        "continuous_changes_per_second": round(changes / max(caught_up_at - continuous_started, 1e-3)),
        "lag_seconds_after_load": round(lag_seconds, 2),
    }
    print("RELIABILITY-FIGURES " + json.dumps(figures))


def test_pgbench_with_scheduled_runs(replication: Replication) -> None:
    """The same load, replicated by the service's own schedule (a catch-up run every 10 s) instead of API calls."""
    r = replication
    assert pgbench(r, "-i", "-s", "2", "-q").wait(300) == 0
    r.on_source("ALTER TABLE public.pgbench_history REPLICA IDENTITY FULL")
    load = pgbench(r, "-c", "2", "-j", "2", "-T", "15", "-n")
    url = f"{r.service.api}/connectors/{r.connector_id}"
    merge_patch = {"Content-Type": "application/merge-patch+json"}
    assert (
        r.http.patch(url, data=json.dumps({"schedule": {"interval_seconds": 10}}), headers=merge_patch).status_code
        == 200
    )

    def scheduled_runs() -> list[dict[str, object]]:
        items = r.http.get(f"{url}/runs", params={"limit": 50}, timeout=30).json()["items"]
        return [run for run in items if run["trigger"] == "schedule"]

    deadline = time.monotonic() + 120
    while len([run for run in scheduled_runs() if run["state"] == "succeeded"]) < 2:
        assert time.monotonic() < deadline, scheduled_runs()
        time.sleep(0.5)
    load.communicate(timeout=120)
    assert r.http.patch(url, data=json.dumps({"schedule": None}), headers=merge_patch).status_code == 200
    while True:  # a tick that read the schedule just before the PATCH may still start one more run
        response = r.http.post(f"{url}/runs", json={}, timeout=30)
        if response.status_code != 409:
            break
        r.wait(response.json()["error"]["run_id"])
    assert response.status_code == 202, response.text
    final = r.wait(response.json()["run_id"], timeout=300)
    assert final["state"] == "succeeded", final
    assert all(run["state"] == "succeeded" for run in scheduled_runs())
    for table in PGBENCH_TABLES:
        r.equal(table)
