"""FivetranHook against the fake Fivetran (contract-validated): every method, sync tracking, retries, errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_connectors.hooks.base import SyncRef, SyncState
from airflow_connectors.hooks.fivetran import FivetranHook, sync_status
from airflow_connectors.hooks.http import ApiAuthError, ApiNotFound
from airflow_connectors.hooks.retry_policy import RetryPolicy
from tests.fakes.fivetran import FakeFivetran
from tests.fakes.server import dropped, rate_limited, server_error

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=20)


def wait_sync(hook: FivetranHook, ref: SyncRef, polls: int = 200) -> Any:
    for _ in range(polls):
        status = hook.get_sync_status(ref)
        if status.state.terminal:
            return status
        asyncio.run(asyncio.sleep(0.05))  # a poll interval, not a wait for a result
    raise AssertionError("the sync did not end")


def create(hook: FivetranHook, schema: str = "shop", **fields: Any) -> dict[str, Any]:
    body = {"group_id": "group_1", "service": "postgres", "config": {"schema": schema}, **fields}
    return hook.create_connector(body)


def test_connections_crud_and_paging(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    created = [create(hook, f"schema_{i}") for i in range(5)]
    assert created[0]["schema"] == "schema_0" and created[0]["status"]["setup_state"] == "connected"
    assert hook.get_connector(created[1]["id"])["schema"] == "schema_1"
    assert [c["id"] for c in hook.list_connectors(page_size=2)] == [c["id"] for c in created]
    assert len(fake_fivetran.requests_to("GET", "/v1/connections")) == 3  # 2 + 2 + 1
    assert hook.find_connector_by_name("schema_3")["id"] == created[3]["id"]
    assert hook.find_connector_by_name("nope") is None
    patched = hook.patch_connector(created[0]["id"], {"sync_frequency": 1440, "daily_sync_time": "03:00"})
    assert (patched["sync_frequency"], patched["daily_sync_time"]) == (1440, "03:00")
    assert hook.set_schedule(created[0]["id"], {"schedule_type": "manual"})["schedule_type"] == "manual"
    hook.pause_connector(created[0]["id"])
    assert hook.get_connector(created[0]["id"])["paused"] is True
    hook.resume_connector(created[0]["id"])
    assert hook.run_setup_tests(created[0]["id"])["setup_tests"][0]["status"] == "PASSED"
    hook.delete_connector(created[4]["id"])
    with pytest.raises(ApiNotFound, match="doesn't exist"):
        hook.get_connector(created[4]["id"])
    assert hook.test_connection() == (True, "Fivetran API reachable, credentials accepted")
    assert hook.connector_url("c1") == "https://fivetran.com/dashboard/connectors/c1"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"sync_frequency": 10}, "sync_frequency"),
        ({"sync_frequency": True}, "sync_frequency"),
        ({"daily_sync_time": "03:00"}, "daily_sync_time"),  # current frequency is not 1440
        ({"sync_frequency": 1440, "daily_sync_time": "3pm"}, "daily_sync_time"),
        ({"schedule_type": "sometimes"}, "schedule_type"),
        ({"data_delay_sensitivity": "low"}, "data_delay_sensitivity"),
        ({"networking_method": "Carrier pigeon"}, "networking_method"),
        ({"schema_status": "done"}, "schema_status"),
        ({"paused": "yes"}, "paused"),
        ({"run_setup_tests": True}, "run_setup_tests"),
        ({"trust_certificates": True, "paused": False}, "trust_certificates"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_patches_are_refused_before_any_request(
    fake_fivetran: FakeFivetran, patch: dict[str, Any], field: str
) -> None:
    hook = FivetranHook(retry=FAST)
    connection = create(hook)
    before = len(fake_fivetran.requests)
    with pytest.raises(ValueError, match=f"^{field}"):
        hook.validate_patch(patch, connection)
    with pytest.raises(ValueError, match=f"^{field}"):
        hook.patch_connector(connection["id"], patch) if field != "daily_sync_time" or "sync_frequency" in patch else (
            hook.validate_patch(patch, connection)
        )
    assert len(fake_fivetran.requests) == before


def test_sync_success_failure_and_force(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    ref = hook.trigger_sync(connection_id)
    assert ref.baseline["succeeded_at"] is None and hook.get_sync_status(ref).state is SyncState.RUNNING
    assert hook.find_active_sync(connection_id) is not None
    assert wait_sync(hook, ref).state is SyncState.SUCCESS
    fake_fivetran.outcomes[connection_id] = "failed"
    second = hook.trigger_sync(connection_id, force=True)
    assert second.baseline["succeeded_at"] is not None  # the previous success is the baseline now
    failed = wait_sync(hook, second)
    assert failed.state is SyncState.FAILED and "failed at" in (failed.message or "")
    assert fake_fivetran.sync_requests[-1] == (connection_id, {"kind": "sync", "force": True})
    assert hook.cancel_sync(second) is False


def test_resync_full_and_tables(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    assert wait_sync(hook, hook.trigger_sync(connection_id, resync=True)).state is SyncState.SUCCESS
    ref = hook.trigger_sync(connection_id, resync=["public.orders", "public.users", "sales.deals"])
    assert wait_sync(hook, ref).state is SyncState.SUCCESS
    kinds = [request for cid, request in fake_fivetran.sync_requests if cid == connection_id]
    assert kinds[0] == {"kind": "resync", "scope": None}
    assert kinds[1] == {"kind": "resync_tables", "tables": {"public": ["orders", "users"], "sales": ["deals"]}}
    with pytest.raises(ValueError, match="resync"):
        hook.trigger_sync(connection_id, resync=["no_schema"])


def test_paused_connection_needs_unpause(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook, paused=True)["id"]
    with pytest.raises(ValueError, match="paused"):
        hook.trigger_sync(connection_id)
    ref = hook.trigger_sync(connection_id, unpause=True)
    assert wait_sync(hook, ref).state is SyncState.SUCCESS
    ref = hook.trigger_sync(connection_id)
    hook.pause_connector(connection_id)
    paused = hook.get_sync_status(ref)
    assert paused.state is SyncState.FAILED and "paused" in (paused.message or "")


def test_rescheduled_manual_sync_is_triggered_again(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook, schedule_type="manual")["id"]
    fake_fivetran.outcomes[connection_id] = "rescheduled"
    ref = hook.trigger_sync(connection_id)
    states = set()
    for _ in range(400):
        status = hook.get_sync_status(ref)
        states.add(status.raw_state)
        if status.state.terminal:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert status.state is SyncState.SUCCESS and "rescheduled" in states
    assert len(fake_fivetran.requests_to("POST", f"/v1/connections/{connection_id}/sync")) == 2


def test_completion_is_decided_by_timestamps_moving_past_the_baseline() -> None:
    ref = SyncRef("fivetran_api", "c", baseline={"succeeded_at": "2026-01-01T00:00:00Z", "failed_at": None})
    old = {"succeeded_at": "2026-01-01T00:00:00Z", "failed_at": None, "status": {"sync_state": "scheduled"}}
    assert sync_status(ref, old).state is SyncState.RUNNING
    done = {**old, "succeeded_at": "2026-01-01T01:00:00Z"}
    assert sync_status(ref, done).state is SyncState.SUCCESS
    both = {**done, "failed_at": "2026-01-01T02:00:00Z"}
    assert sync_status(ref, both).state is SyncState.FAILED


def test_retries_on_429_5xx_and_dropped_connections(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    fake_fivetran.inject(rate_limited(retry_after=1), path=connection_id)
    fake_fivetran.inject(server_error(502), path=connection_id)
    fake_fivetran.inject(dropped(), path=connection_id)
    assert hook.get_connector(connection_id)["id"] == connection_id
    times = [r.received_at for r in fake_fivetran.requests_to("GET", f"/v1/connections/{connection_id}")]
    assert len(times) == 4 and times[1] - times[0] >= 1.0


def test_bad_credentials(fake_fivetran: FakeFivetran, airflow_connection) -> None:  # type: ignore[no-untyped-def]
    airflow_connection(
        "fivetran_default", conn_type="fivetran_api", host=fake_fivetran.url, login="k", password="not-the-secret-8d2a"
    )
    with pytest.raises(ApiAuthError) as caught:
        FivetranHook(retry=FAST).get_connector("x")
    assert caught.value.status == 401 and "not-the-secret-8d2a" not in str(caught.value)


def test_async_status_under_an_event_loop(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    ref = hook.trigger_sync(connection_id)

    async def poll() -> SyncState:
        async_hook = FivetranHook(retry=FAST)
        while True:
            status = await async_hook.aget_sync_status(ref)
            if status.state.terminal:
                return status.state
            await asyncio.sleep(0.05)

    assert asyncio.run(poll()) is SyncState.SUCCESS
    assert asyncio.run(FivetranHook(retry=FAST).acancel_sync(ref)) is False


@pytest.mark.parametrize("unreadable", ["null", "yesterday-ish", 17])
def test_unreadable_timestamps_are_unknown_with_a_warning(unreadable: Any, caplog: pytest.LogCaptureFixture) -> None:
    ref = SyncRef("fivetran_api", "c", baseline={"succeeded_at": None, "failed_at": unreadable})
    connection = {
        "succeeded_at": "2026-01-01T01:00:00.870504Z",
        "failed_at": unreadable,
        "status": {"sync_state": "scheduled"},
    }
    with caplog.at_level("WARNING"):
        status = sync_status(ref, connection)
    assert status.state is SyncState.SUCCESS
    assert f"failed_at {unreadable!r} is not an ISO 8601 timestamp" in caplog.text


def test_a_recorded_null_string_does_not_break_a_sync(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    fake_fivetran.connections[connection_id]["failed_at"] = "null"  # as in a recorded Fivetran payload
    ref = hook.trigger_sync(connection_id)
    assert ref.baseline["failed_at"] == "null"
    assert wait_sync(hook, ref).state is SyncState.SUCCESS


def test_table_resync_for_schemas_with_dots_takes_the_explicit_form(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection_id = create(hook)["id"]
    tables = {"sales.eu": ["orders", "order.lines"], "public": ["users"]}
    assert wait_sync(hook, hook.trigger_sync(connection_id, resync=tables)).state is SyncState.SUCCESS
    assert fake_fivetran.sync_requests[-1] == (connection_id, {"kind": "resync_tables", "tables": tables})
    with pytest.raises(ValueError, match=r"'sales\.eu\.orders' is ambiguous"):
        hook.trigger_sync(connection_id, resync=["sales.eu.orders"])
    with pytest.raises(ValueError, match=r"^resync\.public: expected a non-empty list"):
        hook.trigger_sync(connection_id, resync={"public": []})


def test_a_sync_running_after_an_old_success_is_not_done() -> None:
    """Issue 15 item 8, on a connection as Fivetran returns it: the success predates the time asked for."""
    ref = FivetranHook("unused").sync_ended_after("c", datetime(2024, 5, 2, 12, tzinfo=UTC))
    old = {"succeeded_at": "2024-05-01T08:00:00.000Z", "failed_at": None, "status": {"sync_state": "syncing"}}
    done = {**old, "succeeded_at": "2024-05-02T12:00:01.000Z", "status": {"sync_state": "scheduled"}}
    failed = {**old, "failed_at": "2024-05-02T12:30:00Z", "status": {"sync_state": "scheduled"}}

    assert sync_status(ref, old).state is SyncState.RUNNING
    assert sync_status(ref, done).state is SyncState.SUCCESS
    assert sync_status(ref, failed).state is SyncState.FAILED
