"""The run state machine against a real state store: every transition, legal or not."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.models import RunCreate
from airflow_connectors.cdc.runs.state_machine import (
    ACTIVE_STATES,
    ALLOWED,
    TERMINAL_STATES,
    IllegalTransition,
    LeaseLost,
    RunNotFound,
    RunState,
    transition,
)

LEGAL = {
    (RunState.QUEUED, RunState.SNAPSHOTTING),
    (RunState.QUEUED, RunState.STREAMING),
    (RunState.QUEUED, RunState.FAILED),
    (RunState.QUEUED, RunState.CANCELLED),
    (RunState.SNAPSHOTTING, RunState.STREAMING),
    (RunState.SNAPSHOTTING, RunState.SUCCEEDED),
    (RunState.SNAPSHOTTING, RunState.FAILED),
    (RunState.SNAPSHOTTING, RunState.CANCELLED),
    (RunState.SNAPSHOTTING, RunState.QUEUED),
    (RunState.STREAMING, RunState.SUCCEEDED),
    (RunState.STREAMING, RunState.FAILED),
    (RunState.STREAMING, RunState.CANCELLED),
    (RunState.STREAMING, RunState.QUEUED),
}


def _run_in(conn: psycopg.Connection, state: RunState, connector_id: str = "c1") -> str:
    row = run_store.insert_run(conn, connector_id, RunCreate(), "api")
    conn.execute("UPDATE runs SET state = %s, worker_id = 'w1' WHERE run_id = %s", (state.value, row["run_id"]))
    return row["run_id"]


def _state(conn: psycopg.Connection, run_id: str) -> str:
    return conn.execute("SELECT state FROM runs WHERE run_id = %s", (run_id,)).fetchone()[0]


def test_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in ALLOWED.items() for b in targets} == LEGAL
    assert all(not ALLOWED[state] for state in TERMINAL_STATES)


@pytest.mark.parametrize(("current", "new"), list(itertools.product(RunState, RunState)))
def test_every_transition(state_conn: psycopg.Connection, current: RunState, new: RunState) -> None:
    run_id = _run_in(state_conn, current, connector_id=f"c-{current}-{new}")
    if (current, new) in LEGAL:
        row = transition(state_conn, run_id, new)
        assert row["state"] == new.value
        assert (row["finished_at"] is not None) == (new in TERMINAL_STATES)
        if new in TERMINAL_STATES or new is RunState.QUEUED:
            assert row["worker_id"] is None and row["lease_expires_at"] is None
    else:
        with pytest.raises(IllegalTransition, match=f"{current.value} -> {new.value}"):
            transition(state_conn, run_id, new)
        assert _state(state_conn, run_id) == current.value


def test_worker_guard(state_conn: psycopg.Connection) -> None:
    run_id = _run_in(state_conn, RunState.QUEUED)
    with pytest.raises(LeaseLost):
        transition(state_conn, run_id, RunState.SNAPSHOTTING, worker_id="w2")
    assert _state(state_conn, run_id) == "queued"
    assert transition(state_conn, run_id, RunState.SNAPSHOTTING, worker_id="w1")["state"] == "snapshotting"


def test_progress_columns_only(state_conn: psycopg.Connection) -> None:
    run_id = _run_in(state_conn, RunState.STREAMING)
    with pytest.raises(ValueError, match="cannot set"):
        transition(state_conn, run_id, RunState.SUCCEEDED, changes={"state": "queued"})
    row = transition(
        state_conn, run_id, RunState.FAILED, changes={"error": "boom", "tables": {"public.t": {"rows": 3}}}
    )
    assert (row["error"], row["tables"]) == ("boom", {"public.t": {"rows": 3}})


def test_unknown_run(state_conn: psycopg.Connection) -> None:
    with pytest.raises(RunNotFound):
        transition(state_conn, "nope", RunState.CANCELLED)


def test_one_active_run_per_connector_in_the_database(state_conn: psycopg.Connection) -> None:
    first = run_store.insert_run(state_conn, "c1", RunCreate(), "api")["run_id"]
    for state in ACTIVE_STATES:
        state_conn.execute("UPDATE runs SET state = %s WHERE run_id = %s", (state.value, first))
        with pytest.raises(run_store.RunActive) as caught:
            run_store.insert_run(state_conn, "c1", RunCreate(), "schedule")
        assert caught.value.run_id == first
    transition(state_conn, first, RunState.CANCELLED)
    second = run_store.insert_run(state_conn, "c1", RunCreate(), "api")["run_id"]
    assert second != first
    assert run_store.insert_run(state_conn, "c2", RunCreate(), "api")["connector_id"] == "c2"


def test_history_paging(state_conn: psycopg.Connection) -> None:
    created = []
    for _ in range(5):
        run_id = run_store.insert_run(state_conn, "c1", RunCreate(), "api")["run_id"]
        transition(state_conn, run_id, RunState.CANCELLED)
        created.append(run_id)
    seen, cursor = [], None
    while True:
        rows, cursor = run_store.list_runs(state_conn, "c1", 2, cursor)
        seen.extend(row["run_id"] for row in rows)
        if cursor is None:
            break
    assert seen == created[::-1]
    with pytest.raises(ValueError, match="cursor"):
        run_store.list_runs(state_conn, "c1", 2, "abc")


def test_latest_run_summary(state_conn: psycopg.Connection) -> None:
    assert run_store.latest_run_summary(state_conn, "c1") is None
    failed = run_store.insert_run(state_conn, "c1", RunCreate(), "api")["run_id"]
    transition(state_conn, failed, RunState.FAILED, changes={"error": "x", "lag_bytes": 42, "wal_status": "reserved"})
    latest = run_store.insert_run(state_conn, "c1", RunCreate(), "api")["run_id"]
    summary = run_store.latest_run_summary(state_conn, "c1")
    assert summary == {
        "last_run": {"run_id": latest, "state": "queued", "finished_at": None},
        "runs_total": 2,
        "runs_failed": 1,
        "lag_bytes": 42,
        "wal_status": "reserved",
    }
