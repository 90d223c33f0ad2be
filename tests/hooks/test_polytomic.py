"""PolytomicHook against the fake Polytomic: connections, bulk and model syncs, keys, retries, errors.

Every request the hook sends is checked against what the official SDK sends for the same call (``fake`` fixture),
so a field the real API does not take (a wrong name, a read-only field echoed back) fails the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiAuthError, ApiConflict, ApiValidationError
from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.hooks.retry_policy import RetryPolicy
from tests.fakes.polytomic import FakePolytomic
from tests.fakes.polytomic_sdk import request_problems
from tests.fakes.server import dropped, rate_limited, server_error

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=20)
POSTGRES = {"hostname": "db.example", "port": 5432, "database": "app", "username": "u", "password": "pg-pass-0f3e"}


@pytest.fixture
def fake(fake_polytomic: FakePolytomic) -> Iterator[FakePolytomic]:
    """The fake Polytomic; afterwards, every request the hook sent must be one the SDK could have sent."""
    yield fake_polytomic
    problems = [problem for request in fake_polytomic.requests for problem in request_problems(request)]
    assert not problems, problems


def finish(hook: PolytomicHook, ref: SyncRef) -> SyncStatus:
    for _ in range(200):
        status = hook.get_sync_status(ref)
        if status.state.terminal:
            return status
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_connections_with_merge_patch(fake: FakePolytomic) -> None:
    hook = PolytomicHook(retry=FAST)
    created = hook.create_connector(
        {"name": "pg", "type": "postgresql", "configuration": POSTGRES}, idempotency_key="k1"
    )
    again = hook.create_connector({"name": "pg", "type": "postgresql", "configuration": POSTGRES}, idempotency_key="k1")
    assert created["id"] == again["id"] and len(fake.connections) == 1  # Idempotency-Key
    assert created["configuration"]["password"] == "********"
    assert hook.find_connector_by_name("pg")["id"] == created["id"]
    patched = hook.patch_connector(created["id"], {"configuration": {"port": 6543}})
    assert patched["configuration"]["port"] == 6543 and patched["configuration"]["hostname"] == "db.example"
    assert fake.secrets[created["id"]]["password"] == "pg-pass-0f3e"  # the masked value kept the secret
    sent = fake.requests_to("PATCH", f"/api/connections/{created['id']}")[-1].body
    assert sent["configuration"]["database"] == "app" and sent["name"] == "pg"  # whole configuration sent
    removed = hook.patch_connector(created["id"], {"configuration": {"database": None}})
    assert "database" not in removed["configuration"] and removed["configuration"]["port"] == 6543
    with pytest.raises(ValueError, match="^name"):
        hook.patch_connector(created["id"], {"name": None})
    hook.delete_connector(created["id"])
    assert created["id"] not in fake.connections
    assert all(r.headers["x-polytomic-version"] == "2025-09-18" for r in fake.requests)


def test_set_schedule_writes_the_default_schedule_and_keeps_the_rest(fake: FakePolytomic) -> None:
    """Issue 15.1: at API version 2025-09-18 the schedule is ``default_schedule``, in a full-replacement PUT."""
    sync_id = fake.add_bulk_sync(
        normalize_names="disabled",
        automatically_add_new_objects="all",
        additional_schedules=[{"frequency": "weekly", "day_of_week": "sunday", "resync_mode": "resync"}],
        source_configuration={"replication_slot": "polytomic"},
    )
    before = dict(fake.bulk_syncs[sync_id])

    saved = PolytomicHook(retry=FAST).set_schedule(sync_id, {"frequency": "daily", "hour": 3, "minute": "0"})

    after = fake.bulk_syncs[sync_id]
    assert {k: after["default_schedule"].get(k) for k in ("frequency", "hour", "minute")} == {
        "frequency": "daily",
        "hour": "3",
        "minute": "0",
    }
    assert saved["default_schedule"]["frequency"] == "daily"
    unchanged = ("name", "active", "normalize_names", "automatically_add_new_objects", "source_configuration")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert [s["day_of_week"] for s in after["additional_schedules"]] == ["sunday"]
    [put] = fake.requests_to("PUT", f"/api/bulk/syncs/{sync_id}")
    assert "schedule" not in put.body and "id" not in put.body  # checked in full against the SDK by ``fake``


def test_bulk_sync_lifecycle(fake: FakePolytomic) -> None:
    hook = PolytomicHook(retry=FAST)
    sync_id = fake.add_bulk_sync()
    ref = hook.trigger_sync(sync_id, fetch_mode="incremental")
    assert hook.find_active_sync(sync_id) == ref
    with pytest.raises(ApiConflict):
        hook.trigger_sync(sync_id)
    done = finish(hook, ref)
    assert done.state is SyncState.SUCCESS and done.rows == 1234 and done.raw_state == "completed"
    assert hook.find_active_sync(sync_id) is None
    fake.outcomes[sync_id] = "failed"
    failed = finish(hook, hook.trigger_sync(sync_id, resync=True))
    assert failed.state is SyncState.FAILED and "3 errors" in (failed.message or "")
    assert "rejected by the destination" in (failed.message or "")
    assert fake.requests_to("POST", f"/api/bulk/syncs/{sync_id}/executions")[-1].body == {"resync_mode": "resync"}
    tables = hook.trigger_sync(sync_id, resync=["public.orders"], fetch_mode="full")
    assert fake.executions[tables.run_id].request == {
        "fetch_mode": "full",
        "resync_mode": "resync",
        "schemas": ["public.orders"],
    }
    assert hook.cancel_sync(tables) is True and finish(hook, tables).state is SyncState.CANCELLED
    forced = hook.trigger_sync(sync_id)
    replaced = hook.trigger_sync(sync_id, force=True)
    assert replaced.run_id != forced.run_id and finish(hook, forced).state is SyncState.CANCELLED
    assert hook.sync_url(ref) == f"https://app.polytomic.com/bulk-syncs/{sync_id}"


def test_cancel_stops_only_the_execution_it_names(fake: FakePolytomic) -> None:
    """Cancelling an execution that already ended must not cancel the one another client started since."""
    hook = PolytomicHook(retry=FAST)
    sync_id = fake.add_bulk_sync()
    ours = hook.trigger_sync(sync_id)
    assert finish(hook, ours).state is SyncState.SUCCESS
    fake.run_seconds = 60
    theirs = hook.trigger_sync(sync_id)
    hook.get_sync_status(theirs)

    assert hook.cancel_sync(ours) is False
    assert hook.get_sync_status(theirs).state is SyncState.RUNNING
    assert hook.cancel_sync(theirs) is True
    assert fake.requests_to("POST", f"/api/bulk/syncs/{sync_id}/executions/{theirs.run_id}/cancel")
    assert finish(hook, theirs).state is SyncState.CANCELLED


def test_pause_and_resume_use_activate(fake: FakePolytomic) -> None:
    """Issue 15.4: one ``POST /activate``; no read-modify-write of the whole sync."""
    hook = PolytomicHook(retry=FAST)
    sync_id = fake.add_bulk_sync(normalize_names="disabled")
    fake.run_seconds = 60
    running = hook.trigger_sync(sync_id)
    before = len(fake.requests)

    hook.pause_connector(sync_id)

    assert [(r.method, r.path, r.body) for r in fake.requests[before:]] == [
        ("POST", f"/api/bulk/syncs/{sync_id}/activate", {"active": False})
    ]
    assert fake.bulk_syncs[sync_id]["active"] is False and fake.bulk_syncs[sync_id]["normalize_names"] == "disabled"
    assert finish(hook, running).state is SyncState.CANCELLED  # deactivating stops the execution in progress
    hook.resume_connector(sync_id)
    assert fake.bulk_syncs[sync_id]["active"] is True
    assert fake.requests_to("PUT", f"/api/bulk/syncs/{sync_id}") == []


def test_model_sync(fake: FakePolytomic) -> None:
    """Issue 15.2: model sync executions are cancelled with ``POST /api/syncs/{sync_id}/executions/{id}/cancel``."""
    hook = PolytomicHook(retry=FAST)
    ref = hook.trigger_sync("model-sync-1", resync=True, sync_kind="model")
    done = finish(hook, ref)
    assert done.state is SyncState.SUCCESS and done.rows == 1234
    assert fake.executions[ref.run_id].request == {"resync": True}
    assert hook.sync_url(ref) == "https://app.polytomic.com/syncs/model-sync-1"

    fake.run_seconds = 60
    running = hook.trigger_sync("model-sync-1", sync_kind="model")
    assert hook.cancel_sync(running) is True
    assert fake.requests_to("POST", f"/api/syncs/model-sync-1/executions/{running.run_id}/cancel")
    assert finish(hook, running).state is SyncState.CANCELLED
    assert hook.cancel_sync(running) is False  # it has ended: nothing to cancel

    fake.run_seconds = 0.1
    fake.outcomes["model-sync-1"] = "failed"
    failed = finish(hook, hook.trigger_sync("model-sync-1", sync_kind="model"))
    assert failed.state is SyncState.FAILED and "3 errors" in (failed.message or "")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.trigger_sync("s", fetch_mode="sometimes"), "fetch_mode"),
        (lambda h: h.trigger_sync("s", resync_mode="redo"), "resync_mode"),
        (lambda h: h.trigger_sync("s", colour="red"), "colour"),
        (lambda h: h.trigger_sync("s", sync_kind="model", resync=["t"]), "resync"),
        (lambda h: h.set_schedule("s", {"frequency": "sometimes"}), "schedule.frequency"),
        (lambda h: h.set_schedule("s", {"frequency": "daily", "hour": [3]}), "schedule.hour"),
        (lambda h: h.set_schedule("s", {"frequency": "daily", "hours": "3"}), "schedule.hours"),
        (lambda h: h.create_connector({"name": "x"}), "type"),
        (lambda h: h.patch_connector("c", {"colour": "red"}), "colour"),
    ],
)
def test_invalid_input_is_refused_before_any_request(fake: FakePolytomic, call: Any, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        call(PolytomicHook(retry=FAST))
    assert fake.requests == []


def test_retries_and_deployment_keys(fake: FakePolytomic, airflow_connection) -> None:  # type: ignore[no-untyped-def]
    hook = PolytomicHook(retry=FAST)
    fake.inject(rate_limited(retry_after=1))
    fake.inject(server_error(500))
    fake.inject(dropped())
    assert hook.find_connector_by_name("none") is None
    times = [r.received_at for r in fake.requests_to("GET", "/api/connections")]
    assert len(times) == 4 and times[1] - times[0] >= 1.0
    airflow_connection(
        "polytomic_default",
        conn_type="polytomic",
        host=fake.url,
        password=fake.deployment_key,
        extra={"key_type": "deployment_key"},
    )
    assert PolytomicHook(retry=FAST).test_connection()[0] is True
    airflow_connection("polytomic_default", conn_type="polytomic", host=fake.url, password="wrong-key-9a9a")
    with pytest.raises(ApiAuthError) as caught:
        PolytomicHook(retry=FAST).get_connector("x")
    assert "wrong-key-9a9a" not in str(caught.value)
    airflow_connection(
        "polytomic_default",
        conn_type="polytomic",
        host=fake.url,
        password=fake.api_key,
        extra={"api_version": "1999-01-01"},
    )
    with pytest.raises(ApiValidationError, match="X-Polytomic-Version"):
        PolytomicHook(retry=FAST).get_connector("x")


def test_async_status_and_cancel(fake: FakePolytomic) -> None:
    sync_id = fake.add_bulk_sync()
    fake.run_seconds = 60
    bulk = PolytomicHook(retry=FAST).trigger_sync(sync_id)
    model = PolytomicHook(retry=FAST).trigger_sync("model-sync-1", sync_kind="model")

    async def scenario(ref: SyncRef) -> tuple[bool, SyncState]:
        hook = PolytomicHook(retry=FAST)
        cancelled = await hook.acancel_sync(ref)
        while not (status := await hook.aget_sync_status(ref)).state.terminal:
            await asyncio.sleep(0.05)
        return cancelled, status.state

    assert asyncio.run(scenario(bulk)) == (True, SyncState.CANCELLED)
    assert asyncio.run(scenario(model)) == (True, SyncState.CANCELLED)
