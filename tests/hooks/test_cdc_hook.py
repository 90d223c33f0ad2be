"""CdcHook against the real CDC core service (its workers run the fake engine of the runs tests)."""
# ruff: noqa: F811  (the fixtures imported from tests.operators.cdc_support are parameters of the tests)

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_connectors.hooks.base import SyncRef, SyncState
from airflow_connectors.hooks.cdc import CdcHook
from airflow_connectors.hooks.http import ApiAuthError, ApiConflict, ApiNotFound, ApiValidationError
from airflow_connectors.hooks.registry import get_hook
from tests.cdc.runs.client import RunsClient
from tests.fixtures.cdc_service import CdcService
from tests.operators.cdc_support import cdc_conn, fake_cdc, runs, wait_run_state  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture
def hook(cdc_conn: str) -> CdcHook:
    found = get_hook(cdc_conn)
    assert isinstance(found, CdcHook)
    return found


def body(runs: RunsClient, behaviour: str = "ok", **changes: Any) -> dict[str, Any]:
    connection = {key: runs.source[key] for key in ("host", "port", "user", "password", "database")}
    document = {
        "id": "",
        "name": f"fake:{behaviour}",
        "source": {"postgres": {"connection": connection, "replication_type": {"logical_replication": {}}}},
        "sink": {"postgres": {"connection": copy.deepcopy(connection)}},
    }
    return {**document, **changes}


def test_connector_crud_and_paging(hook: CdcHook, runs: RunsClient) -> None:
    created = hook.create_connector(body(runs))
    assert created["id"] and created["source"]["postgres"]["connection"]["password"] == "********"
    own_id = f"own-{uuid.uuid4().hex[:8]}"
    assert hook.create_connector(body(runs, id=own_id))["id"] == own_id
    assert hook.get_connector(own_id)["name"] == "fake:ok"

    name = f"named-{uuid.uuid4().hex[:8]}"
    named = hook.create_connector(body(runs, name=name))
    assert hook.find_connector_by_name(name)["id"] == named["id"]
    assert hook.find_connector_by_name("nobody-has-this-name") is None
    assert {c["id"] for c in hook.list_connectors(page_size=1)} >= {created["id"], own_id, named["id"]}

    patched = hook.patch_connector(named["id"], {"buffer": {"max_rows": 1000}, "name": f"{name}-2"})
    assert patched["buffer"]["max_rows"] == 1000 and patched["name"] == f"{name}-2"

    hook.delete_connector(named["id"], keep_replication_objects=True)
    with pytest.raises(ApiNotFound):
        hook.get_connector(named["id"])


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"source": {"postgres": {"connection": {"host": "elsewhere"}}}}, "source.postgres.connection.host"),
        ({"sink": {"postgres": {"connection": {"port": 6543}}}}, "sink.postgres.connection.port"),
        ({"source": {"postgres": {"connection": {"database": "other"}}}}, "source.postgres.connection.database"),
        ({"sink": {"mysql": {}}}, "sink.mysql"),
        ({"source": None}, "source"),
        ({"sink": {"postgres": {"connection": {"user": None}}}}, "sink.postgres.connection.user"),
    ],
)
def test_patch_rules_are_checked_locally_naming_the_field(
    hook: CdcHook, runs: RunsClient, patch: dict[str, Any], field: str
) -> None:
    current = hook.create_connector(body(runs))
    with pytest.raises(ValueError, match=f"^{field}"):
        hook.validate_patch(patch, current)
    assert hook.get_connector(current["id"]) == current


def test_patch_connector_checks_what_needs_no_request(hook: CdcHook) -> None:
    with pytest.raises(ValueError, match="^source: "):
        hook.patch_connector("any", {"source": None})
    with pytest.raises(ValueError, match="^source.mysql"):
        hook.patch_connector("any", {"source": {"mysql": {}}})


def test_schedule_pause_resume(hook: CdcHook, runs: RunsClient) -> None:
    connector_id = hook.create_connector(body(runs))["id"]
    with pytest.raises(ValueError, match="schedule"):
        hook.set_schedule(connector_id, {"interval_seconds": 5})
    with pytest.raises(ValueError, match="schedule"):
        hook.set_schedule(connector_id, {"interval_seconds": 60, "cron": "* * * * *"})
    assert hook.set_schedule(connector_id, {"cron": "*/15 * * * *"})["schedule"]["cron"] == "*/15 * * * *"
    hook.pause_connector(connector_id)
    assert hook.get_connector_response(connector_id)["status"]["paused"] is True
    with pytest.raises(ApiConflict):
        hook.trigger_sync(connector_id)
    hook.resume_connector(connector_id)
    assert hook.get_connector_response(connector_id)["status"]["paused"] is False


def test_runs_status_normalisation_and_active_run(hook: CdcHook, runs: RunsClient) -> None:
    ok = hook.create_connector(body(runs))["id"]
    ref = hook.trigger_sync(ok)
    assert ref == SyncRef("cdc_core", ok, ref.run_id)
    wait_run_state(runs, ok, str(ref.run_id), "succeeded")
    status = hook.get_sync_status(ref)
    assert (status.state, status.raw_state, status.rows, status.tables) == (
        SyncState.SUCCESS,
        "succeeded",
        10,
        ("public.t",),
    )
    assert hook.list_runs(ok)[0]["run_id"] == ref.run_id
    assert hook.find_active_sync(ok) is None
    assert hook.cancel_sync(ref) is False  # already ended

    blocking = hook.create_connector(body(runs, "block"))["id"]
    first = hook.trigger_sync(blocking, resync=["public.t"])
    with pytest.raises(ApiConflict):
        hook.trigger_sync(blocking)
    assert hook.find_active_sync(blocking) == first
    assert hook.get_sync_status(first).state is SyncState.RUNNING
    assert hook.cancel_sync(first) is True
    wait_run_state(runs, blocking, str(first.run_id), "cancelled")
    assert hook.get_sync_status(first).state is SyncState.CANCELLED

    failing = hook.create_connector(body(runs, "slot-lost"))["id"]
    ref = hook.trigger_sync(failing)
    wait_run_state(runs, failing, str(ref.run_id), "failed")
    status = hook.get_sync_status(ref)
    assert status.state is SyncState.FAILED and "replication slot is lost" in str(status.message)


def test_run_options_are_validated_before_sending(hook: CdcHook) -> None:
    with pytest.raises(ValueError, match="^mode"):
        hook.trigger_sync("any", mode="sometimes")
    with pytest.raises(ValueError, match="^resync"):
        hook.trigger_sync("any", resync=["no_schema"])
    with pytest.raises(ValueError, match="^fetch_mode"):
        hook.trigger_sync("any", fetch_mode="full")


def test_async_twins(hook: CdcHook, runs: RunsClient) -> None:
    connector_id = hook.create_connector(body(runs, "block"))["id"]
    ref = hook.trigger_sync(connector_id)

    async def scenario() -> tuple[SyncState, bool]:
        status = await hook.aget_sync_status(ref)
        return status.state, await hook.acancel_sync(ref)

    assert asyncio.run(scenario()) == (SyncState.RUNNING, True)
    wait_run_state(runs, connector_id, str(ref.run_id), "cancelled")


def test_validate_source_and_sink(hook: CdcHook, runs: RunsClient) -> None:
    connection = {key: runs.source[key] for key in ("host", "port", "user", "password", "database")}
    report = hook.validate_sink({"connection": connection})
    assert report["ok"] is True, report
    report = hook.validate_sink({"connection": {**connection, "password": "wrong-password"}})
    assert report["ok"] is False and "wrong-password" not in str(report)
    connector_id = hook.create_connector(body(runs))["id"]
    assert hook.validate_sink(connector_id=connector_id)["ok"] is True
    with pytest.raises(ApiValidationError):
        hook.validate_source({"connection": {"host": "h"}})


def test_links_and_connection_test(hook: CdcHook, fake_cdc: CdcService, airflow_connection: Callable[..., str]) -> None:
    assert hook.connector_url("c1") == f"{fake_cdc.url}/console/connectors/c1"
    assert hook.sync_url(SyncRef("cdc_core", "c1", "r1")) == f"{fake_cdc.url}/console/connectors/c1/runs/r1"
    assert hook.test_connection()[0] is True
    wrong = airflow_connection("cdc_wrong", conn_type="cdc_core", host=fake_cdc.url, password="wrong-token-value")
    ok, message = get_hook(wrong).test_connection()
    assert ok is False and "wrong-token-value" not in message and fake_cdc.token not in message
    with pytest.raises(ApiAuthError) as raised:
        get_hook(wrong).get_connector("c1")
    assert "wrong-token-value" not in str(raised.value)


def test_force_cancels_the_active_run_and_starts_another(hook: CdcHook, runs: RunsClient) -> None:
    connector_id = hook.create_connector(body(runs, "block"))["id"]
    first = hook.trigger_sync(connector_id)
    runs.wait_run(connector_id, str(first.run_id), until=lambda run: run["state"] != "queued")

    second = hook.trigger_sync(connector_id, force=True)

    assert second.run_id != first.run_id
    assert runs.run(connector_id, str(first.run_id))["state"] == "cancelled"
    assert hook.cancel_sync(second) is True


def test_run_states_are_the_services_own() -> None:
    from airflow_connectors.cdc.runs.state_machine import ACTIVE_STATES, RunState
    from airflow_connectors.hooks.cdc import SYNC_STATES

    assert set(SYNC_STATES) == set(RunState)
    assert {state for state, sync in SYNC_STATES.items() if sync is SyncState.RUNNING} == ACTIVE_STATES


def test_lineage_names_the_connectors_databases(
    hook: CdcHook, runs: RunsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = hook.create_connector(body(runs))
    source = f"postgres://{runs.source['host']}:{runs.source['port']}"
    # Where each table was written is the run's record (sink names are decided by the service, never re-derived).
    recorded = {"sink_tables": {"public.t": {"target_schema": "replica", "table": "public_t_1a2b3c4d"}}}
    monkeypatch.setattr(hook, "get_run", lambda connector_id, run_id: recorded)

    inputs, outputs = hook.lineage_datasets(SyncRef("cdc_core", connector["id"], "r1"), ["public.t", "public.u"])

    database = runs.source["database"]
    assert inputs == [(source, f"{database}.public.t"), (source, f"{database}.public.u")]
    assert outputs == [(source, f"{database}.replica.public_t_1a2b3c4d")]  # public.u: not mapped by the run
