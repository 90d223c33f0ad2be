"""PolytomicHook against the fake Polytomic: connections, bulk and model syncs, keys, retries, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_connectors.hooks.base import SyncRef, SyncState
from airflow_connectors.hooks.http import ApiAuthError, ApiConflict, ApiValidationError
from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.hooks.retry_policy import RetryPolicy
from tests.fakes.polytomic import FakePolytomic
from tests.fakes.server import dropped, rate_limited, server_error

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=20)
POSTGRES = {"hostname": "db.example", "port": 5432, "database": "app", "username": "u", "password": "pg-pass-0f3e"}


def finish(hook: PolytomicHook, ref: SyncRef) -> Any:
    for _ in range(200):
        status = hook.get_sync_status(ref)
        if status.state.terminal:
            return status
        asyncio.run(asyncio.sleep(0.05))
    raise AssertionError("the execution did not end")


def test_connections_with_merge_patch(fake_polytomic: FakePolytomic) -> None:
    hook = PolytomicHook(retry=FAST)
    created = hook.create_connector(
        {"name": "pg", "type": "postgresql", "configuration": POSTGRES}, idempotency_key="k1"
    )
    again = hook.create_connector({"name": "pg", "type": "postgresql", "configuration": POSTGRES}, idempotency_key="k1")
    assert created["id"] == again["id"] and len(fake_polytomic.connections) == 1  # Idempotency-Key
    assert created["configuration"]["password"] == "********"
    assert hook.find_connector_by_name("pg")["id"] == created["id"]
    patched = hook.patch_connector(created["id"], {"configuration": {"port": 6543}})
    assert patched["configuration"]["port"] == 6543 and patched["configuration"]["hostname"] == "db.example"
    assert fake_polytomic.secrets[created["id"]]["password"] == "pg-pass-0f3e"  # the masked value kept the secret
    sent = fake_polytomic.requests_to("PATCH", f"/api/connections/{created['id']}")[-1].body
    assert sent["configuration"]["database"] == "app" and sent["name"] == "pg"  # whole configuration sent
    with pytest.raises(ValueError, match="^name"):
        hook.patch_connector(created["id"], {"name": None})
    hook.delete_connector(created["id"])
    assert created["id"] not in fake_polytomic.connections
    assert all(r.headers["x-polytomic-version"] == "2025-09-18" for r in fake_polytomic.requests)


def test_bulk_sync_lifecycle(fake_polytomic: FakePolytomic) -> None:
    hook = PolytomicHook(retry=FAST)
    sync_id = fake_polytomic.add_bulk_sync()
    ref = hook.trigger_sync(sync_id, fetch_mode="incremental")
    assert hook.find_active_sync(sync_id) == ref
    with pytest.raises(ApiConflict):
        hook.trigger_sync(sync_id)
    done = finish(hook, ref)
    assert done.state is SyncState.SUCCESS and done.rows == 1234 and done.raw_state == "completed"
    fake_polytomic.outcomes[sync_id] = "failed"
    failed = finish(hook, hook.trigger_sync(sync_id, resync=True))
    assert failed.state is SyncState.FAILED and "errors" in (failed.message or "")
    assert fake_polytomic.requests_to("POST", f"/api/bulk/syncs/{sync_id}/executions")[-1].body == {
        "resync_mode": "resync"
    }
    tables = hook.trigger_sync(sync_id, resync=["public.orders"], fetch_mode="full")
    assert fake_polytomic.executions[tables.run_id]["request"] == {
        "fetch_mode": "full",
        "resync_mode": "resync",
        "schemas": ["public.orders"],
    }
    assert hook.cancel_sync(tables) is True and finish(hook, tables).state is SyncState.CANCELLED
    forced = hook.trigger_sync(sync_id)
    replaced = hook.trigger_sync(sync_id, force=True)
    assert replaced.run_id != forced.run_id and finish(hook, forced).state is SyncState.CANCELLED
    hook.set_schedule(sync_id, {"frequency": "daily", "hour": "3"})
    assert fake_polytomic.bulk_syncs[sync_id]["schedule"] == {"frequency": "daily", "hour": "3"}
    hook.pause_connector(sync_id)
    assert fake_polytomic.bulk_syncs[sync_id]["active"] is False
    assert hook.sync_url(ref) == f"https://app.polytomic.com/bulk-syncs/{sync_id}"


def test_model_sync(fake_polytomic: FakePolytomic) -> None:
    hook = PolytomicHook(retry=FAST)
    ref = hook.trigger_sync("model-sync-1", resync=True, sync_kind="model")
    assert finish(hook, ref).state is SyncState.SUCCESS
    assert fake_polytomic.executions[ref.run_id]["request"] == {"resync": True}
    assert hook.cancel_sync(ref) is False


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda h: h.trigger_sync("s", fetch_mode="sometimes"), "fetch_mode"),
        (lambda h: h.trigger_sync("s", resync_mode="redo"), "resync_mode"),
        (lambda h: h.trigger_sync("s", colour="red"), "colour"),
        (lambda h: h.trigger_sync("s", sync_kind="model", resync=["t"]), "resync"),
        (lambda h: h.set_schedule("s", {"frequency": "sometimes"}), "schedule.frequency"),
        (lambda h: h.create_connector({"name": "x"}), "type"),
        (lambda h: h.patch_connector("c", {"colour": "red"}), "colour"),
    ],
)
def test_invalid_input_is_refused_before_any_request(fake_polytomic: FakePolytomic, call: Any, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        call(PolytomicHook(retry=FAST))
    assert fake_polytomic.requests == []


def test_retries_and_deployment_keys(fake_polytomic: FakePolytomic, airflow_connection) -> None:  # type: ignore[no-untyped-def]
    hook = PolytomicHook(retry=FAST)
    fake_polytomic.inject(rate_limited(retry_after=1))
    fake_polytomic.inject(server_error(500))
    fake_polytomic.inject(dropped())
    assert hook.find_connector_by_name("none") is None
    times = [r.received_at for r in fake_polytomic.requests_to("GET", "/api/connections")]
    assert len(times) == 4 and times[1] - times[0] >= 1.0
    airflow_connection(
        "polytomic_default",
        conn_type="polytomic",
        host=fake_polytomic.url,
        password=fake_polytomic.deployment_key,
        extra={"key_type": "deployment_key"},
    )
    assert PolytomicHook(retry=FAST).test_connection()[0] is True
    airflow_connection("polytomic_default", conn_type="polytomic", host=fake_polytomic.url, password="wrong-key-9a9a")
    with pytest.raises(ApiAuthError) as caught:
        PolytomicHook(retry=FAST).get_connector("x")
    assert "wrong-key-9a9a" not in str(caught.value)
    airflow_connection(
        "polytomic_default",
        conn_type="polytomic",
        host=fake_polytomic.url,
        password=fake_polytomic.api_key,
        extra={"api_version": "1999-01-01"},
    )
    with pytest.raises(ApiValidationError, match="X-Polytomic-Version"):
        PolytomicHook(retry=FAST).get_connector("x")


def test_async_status_and_cancel(fake_polytomic: FakePolytomic) -> None:
    sync_id = fake_polytomic.add_bulk_sync()
    ref = PolytomicHook(retry=FAST).trigger_sync(sync_id)

    async def scenario() -> tuple[bool, SyncState]:
        hook = PolytomicHook(retry=FAST)
        cancelled = await hook.acancel_sync(ref)
        while not (status := await hook.aget_sync_status(ref)).state.terminal:
            await asyncio.sleep(0.05)
        return cancelled, status.state

    assert asyncio.run(scenario()) == (True, SyncState.CANCELLED)
