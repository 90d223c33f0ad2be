"""What operators of the service see: run counters and positions, and the slot's lag and wal_status on the
connector status (measured on the source)."""

from __future__ import annotations

from tests.reliability.conftest import Replication


def test_run_counters_and_slot_health_on_the_status(replication: Replication) -> None:
    r = replication
    r.on_source(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text)",
        "INSERT INTO public.t SELECT i, 'x' FROM generate_series(1, 2000) i",
    )
    first = r.wait(r.start())
    assert first["state"] == "succeeded" and first["tables"]["public.t"]["rows"] == 2000
    assert (
        first["start_lsn"]
        and first["fence_lsn"]
        and first["applied_lsn"]
        and first["started_at"]
        and first["finished_at"]
    )
    r.on_source("UPDATE public.t SET v = 'y' WHERE id <= 10", "DELETE FROM public.t WHERE id > 1990")
    second = r.wait(r.start())
    assert second["tables"]["public.t"]["updates"] == 10 and second["tables"]["public.t"]["deletes"] == 10
    status = r.http.get(f"{r.service.api}/connectors/{r.connector_id}", timeout=30).json()["status"]
    assert status["last_run"]["run_id"] == second["run_id"] and status["runs_total"] == 2 and status["runs_failed"] == 0
    assert status["wal_status"] in ("reserved", "extended") and isinstance(status["lag_bytes"], int)
