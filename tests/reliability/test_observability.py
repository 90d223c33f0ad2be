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


def test_disabling_stops_the_active_run_and_delete_drops_the_slot(replication: Replication) -> None:
    import json

    import psycopg

    r = replication
    r.on_source("CREATE TABLE public.t (id int PRIMARY KEY)", "INSERT INTO public.t SELECT generate_series(1, 100)")
    assert r.wait(r.start())["state"] == "succeeded"
    url = f"{r.service.api}/connectors/{r.connector_id}"
    continuous = r.start(mode="continuous")
    r.wait(continuous, lambda run: run["state"] == "streaming")
    patch = r.http.patch(
        url, data=json.dumps({"disabled": True}), headers={"Content-Type": "application/merge-patch+json"}
    )
    assert patch.status_code == 200 and patch.json()["status"]["state"] == "disabled"
    assert r.wait(continuous)["state"] == "cancelled"
    assert r.http.post(f"{url}/runs", json={}, timeout=30).status_code == 409

    def replication_objects() -> tuple[int, int]:
        with psycopg.connect(r.source) as conn:
            slots = conn.execute(
                "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()"
            ).fetchone()
            publications = conn.execute("SELECT count(*) FROM pg_publication").fetchone()
        return int(slots[0]), int(publications[0])

    assert replication_objects() == (1, 1)
    assert r.http.delete(url, timeout=60).status_code == 204
    assert replication_objects() == (0, 0)  # nothing left holding WAL on the source
