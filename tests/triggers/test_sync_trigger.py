"""SyncTrigger: serialisation, events, deadlines with cancel, on_kill, and never blocking the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_connectors.hooks.base import SyncRef
from airflow_connectors.triggers.sync import SyncEvent, SyncTrigger
from tests.cdc.runs.client import RunsClient
from tests.operators.cdc_support import wait_run_state

REF = SyncRef(conn_type="cdc_core", connector_id="c1", run_id="r1", baseline={"succeeded_at": None})


def test_serialize_round_trip_is_json() -> None:
    trigger = SyncTrigger(conn_id="x", ref=REF.to_dict(), deadline=1234.5, poll_interval=3, owns_run=False)

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_connectors.triggers.sync.SyncTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = SyncTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert again.ref == REF and again.deadline == 1234.5 and again.owns_run is False


def _event(**changes: Any) -> dict[str, Any]:
    sync = {"state": "success", "raw_state": "succeeded", "ref": REF.to_dict()}
    return {"status": "success", "message": "ok", "run_id": "r1", "ref": REF.to_dict(), "sync": sync, **changes}


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ("not a dict", "expected a dict"),
        (_event(status="done"), "unexpected trigger event status"),
        (_event(message=None), "without a message"),
        (_event(run_id="r2"), "does not match the awaited run"),
        (_event(status="error"), "does not match the run state"),
        (_event(sync=None), "does not match the run state"),
        (_event(status="cancelled", sync=None), "does not match the run state"),
    ],
)
def test_events_are_validated_on_resume(event: Any, error: str) -> None:
    with pytest.raises(AirflowException, match=error):
        SyncEvent.from_payload(event, REF)


def test_valid_events_pass() -> None:
    assert SyncEvent.from_payload(_event(), REF).status == "success"
    assert SyncEvent.from_payload(_event(status="timeout", sync=None), REF).status == "timeout"
    assert SyncEvent.from_payload(_event(status="error", sync=None), REF).status == "error"


async def _first_event(trigger: SyncTrigger) -> dict[str, Any]:
    event = await anext(trigger.run())
    return event.payload


def _ref(connector_id: str, run_id: str) -> dict[str, Any]:
    return SyncRef(conn_type="cdc_core", connector_id=connector_id, run_id=run_id).to_dict()


@pytest.mark.slow
def test_success_event_from_the_service(cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("ok")
    run_id = runs.start(connector_id)
    trigger = SyncTrigger(
        conn_id=cdc_conn, ref=_ref(connector_id, run_id), deadline=time.time() + 60, poll_interval=0.1
    )

    payload = asyncio.run(_first_event(trigger))

    assert payload["status"] == "success" and payload["run_id"] == run_id
    assert payload["sync"]["rows"] == 10 and payload["sync"]["tables"] == ["public.t"]


@pytest.mark.slow
@pytest.mark.parametrize("owns_run", [True, False])
def test_deadline_fires_a_timeout_event_and_cancels_only_an_owned_run(
    cdc_conn: str, runs: RunsClient, owns_run: bool
) -> None:
    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)
    trigger = SyncTrigger(
        conn_id=cdc_conn, ref=_ref(connector_id, run_id), deadline=time.time() + 1, poll_interval=0.2, owns_run=owns_run
    )

    payload = asyncio.run(_first_event(trigger))

    assert payload["status"] == "timeout"
    if owns_run:
        assert "run cancelled" in payload["message"]
        wait_run_state(runs, connector_id, run_id, "cancelled")
    else:
        assert runs.run(connector_id, run_id)["state"] != "cancelled"
        assert runs.cancel(connector_id, run_id).status_code == 202


@pytest.mark.slow
def test_on_kill_cancels_the_run(cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)
    trigger = SyncTrigger(conn_id=cdc_conn, ref=_ref(connector_id, run_id), poll_interval=0.2)

    asyncio.run(trigger.on_kill())

    wait_run_state(runs, connector_id, run_id, "cancelled")


@pytest.mark.slow
def test_polling_never_blocks_the_event_loop(cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("block")
    run_id = runs.start(connector_id)
    trigger = SyncTrigger(
        conn_id=cdc_conn, ref=_ref(connector_id, run_id), deadline=time.time() + 2, poll_interval=0.05
    )

    async def scenario() -> float:
        worst = 0.0
        ticking = True

        async def ticker() -> None:
            nonlocal worst
            last = time.monotonic()
            while ticking:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                worst = max(worst, now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await _first_event(trigger)
        ticking = False
        await tick
        return worst

    worst_gap = asyncio.run(scenario())

    assert worst_gap < 0.25, f"the event loop was blocked for {worst_gap:.3f}s"
    wait_run_state(runs, connector_id, run_id, "cancelled")


@pytest.mark.slow
def test_a_429_storm_longer_than_the_retry_budget_is_waited_out(fake_fivetran) -> None:  # type: ignore[no-untyped-def]
    from airflow_connectors.hooks.fivetran import FivetranHook
    from tests.fakes.server import rate_limited

    hook = FivetranHook("fivetran_default")
    connection = hook.create_connector({"group_id": "grp", "service": "postgres", "config": {"schema": "storm"}})
    ref = hook.trigger_sync(connection["id"])
    fake_fivetran.inject(rate_limited(0.1), times=9)  # more than one request's 6 attempts
    trigger = SyncTrigger(conn_id="fivetran_default", ref=ref.to_dict(), deadline=time.time() + 60, poll_interval=0.1)

    payload = asyncio.run(_first_event(trigger))

    assert payload["status"] == "success", payload
    assert len([r for r in fake_fivetran.requests_to("GET", r"/v1/connections/.*")]) >= 10


@pytest.mark.slow
def test_a_run_that_cannot_be_polled_ends_in_an_error_event(cdc_conn: str, runs: RunsClient) -> None:
    connector_id = runs.create_connector("ok")
    trigger = SyncTrigger(conn_id=cdc_conn, ref=_ref(connector_id, "no-such-run"), poll_interval=0.1)

    payload = asyncio.run(_first_event(trigger))

    assert payload["status"] == "error" and payload["sync"] is None
    assert "polling run no-such-run failed" in payload["message"] and "404" in payload["message"]
    SyncEvent.from_payload(payload, SyncRef.from_dict(_ref(connector_id, "no-such-run")))
