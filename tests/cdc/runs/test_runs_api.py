"""Runs API against the real service on a real state store; runs executed by worker processes (engine double)."""

from __future__ import annotations

import threading
from collections import Counter

import requests

from tests.cdc.runs.client import RunsClient


def test_run_lifecycle_and_connector_status(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("ok")
    response = runs_api.start_run(connector_id, mode="catch_up", resync=["public.t"])
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["state"], queued["mode"], queued["resync"], queued["trigger"]) == (
        "queued",
        "catch_up",
        ["public.t"],
        "api",
    )
    run = runs_api.wait_run(connector_id, queued["run_id"])
    assert run["state"] == "succeeded", run
    assert run["tables"]["public.t"]["rows"] == 10 and run["rows_total"] == 10
    assert (run["start_lsn"], run["fence_lsn"], run["applied_lsn"]) == ("0/10", "0/20", "0/20")
    assert run["started_at"] and run["finished_at"] and run["error"] is None
    connector = runs_api.connector(connector_id)
    assert connector["run_id"] == run["run_id"]
    status = connector["status"]
    assert status["last_run"]["run_id"] == run["run_id"] and status["last_run"]["state"] == "succeeded"
    assert (status["runs_total"], status["runs_failed"]) == (1, 0)


def test_second_run_gets_409_with_the_active_run_id(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("block")
    active = runs_api.start(connector_id)
    response = runs_api.start_run(connector_id, mode="continuous")
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["run_id"]) == ("run_active", active)
    assert runs_api.cancel(connector_id, active).status_code == 202
    assert runs_api.wait_run(connector_id, active)["state"] == "cancelled"
    assert runs_api.start(connector_id) != active


def test_twenty_concurrent_requests_start_exactly_one_run(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("block")
    barrier = threading.Barrier(20)
    responses: list[requests.Response] = []
    lock = threading.Lock()

    def post() -> None:
        session = runs_api.session()
        barrier.wait()
        response = session.post(f"{runs_api.api}/connectors/{connector_id}/runs", json={}, timeout=60)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = Counter(response.status_code for response in responses)
    assert codes == {202: 1, 409: 19}, [r.text for r in responses if r.status_code not in (202, 409)]
    started = next(r.json()["run_id"] for r in responses if r.status_code == 202)
    assert {r.json()["error"]["run_id"] for r in responses if r.status_code == 409} == {started}
    history = runs_api.http.get(f"{runs_api.api}/connectors/{connector_id}/runs", timeout=30).json()
    assert [run["run_id"] for run in history["items"]] == [started]


def test_cancel_running_and_finished_runs(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("block")
    run_id = runs_api.start(connector_id)
    runs_api.wait_run(connector_id, run_id, lambda run: run["state"] == "snapshotting")
    assert runs_api.cancel(connector_id, run_id).status_code == 202
    run = runs_api.wait_run(connector_id, run_id)
    assert run["state"] == "cancelled" and run["finished_at"]
    assert runs_api.cancel(connector_id, run_id).status_code == 202  # cancelling twice is harmless
    done = runs_api.create_connector("ok")
    finished = runs_api.start(done)
    assert runs_api.wait_run(done, finished)["state"] == "succeeded"
    response = runs_api.cancel(done, finished)
    assert response.status_code == 409 and response.json()["error"]["code"] == "run_finished"


def test_history_pages_newest_first(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("ok")
    started = []
    for _ in range(5):
        started.append(runs_api.start(connector_id))
        runs_api.wait_run(connector_id, started[-1])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = runs_api.http.get(f"{runs_api.api}/connectors/{connector_id}/runs", params=params, timeout=30).json()
        seen += [run["run_id"] for run in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == started[::-1] and pages == 3
    assert runs_api.connector(connector_id)["status"]["runs_total"] == 5


def test_bad_requests_name_the_field(runs_api: RunsClient) -> None:
    connector_id = runs_api.create_connector("ok")
    for body, field in (({"mode": "sometimes"}, "mode"), ({"resync": ["no_schema"]}, "resync"), ({"x": 1}, "x")):
        response = runs_api.start_run(connector_id, **body)
        assert response.status_code == 422, response.text
        assert field in response.text
    runs_url = f"{runs_api.api}/connectors/{connector_id}/runs"
    response = runs_api.http.get(runs_url, params={"cursor": "zzz"}, timeout=30)
    assert response.status_code == 422 and "cursor" in response.text
    assert runs_api.http.get(f"{runs_url}/nope", timeout=30).status_code == 404
    assert runs_api.start_run("no-such-connector").status_code == 404
    assert requests.post(runs_url, json={}, timeout=30).status_code == 401
