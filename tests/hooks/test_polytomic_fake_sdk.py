"""The fake Polytomic driven by the official SDK (PyPI ``polytomic``): every call the SDK makes for the parts of the
API in scope is accepted, and every answer parses into the SDK's types with no field they do not declare. This is
what keeps the fake (and so the hook's tests) true to the real wire format."""

from __future__ import annotations

import time
from typing import Any

import pytest
from polytomic import Polytomic
from polytomic.core.api_error import ApiError
from polytomic.errors import BadRequestError, ConflictError, NotFoundError, UnprocessableEntityError

from tests.fakes.polytomic import FakePolytomic
from tests.fakes.polytomic_sdk import sdk_client, strict
from tests.fakes.server import rate_limited

PAGINATED = frozenset({"pagination"})  # documented on bulk sync lists, missing from the SDK's type
POSTGRES = {"hostname": "db.example", "port": 5432, "database": "app", "username": "u", "password": "pg-pass-0f3e"}


@pytest.fixture
def fake() -> Any:
    fake = FakePolytomic().start()
    yield fake
    fake.stop()
    assert not fake.failures


def until_terminal(get: Any, terminal: set[str]) -> Any:
    """Poll an SDK getter until the execution ends; returns every status seen."""
    seen: list[str] = []
    for _ in range(200):
        execution = strict(get()).data
        if not seen or seen[-1] != execution.status:
            seen.append(execution.status)
        if execution.status in terminal:
            return seen, execution
        time.sleep(0.05)
    raise AssertionError(f"execution still {seen[-1]}")


def test_connections(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    body = {"name": "pg", "type": "postgresql", "configuration": POSTGRES}
    created = strict(client.connections.create(**body, idempotency_key="k1"))
    again = client.connections.create(**body, idempotency_key="k1")
    cid = created.data.id
    assert again.data.id == cid and len(fake.connections) == 1
    assert created.data.configuration["password"] == "********" and created.data.type.id == "postgresql"
    assert created.data.healthcheck_interval == "3h30m"

    got = strict(client.connections.get(cid)).data
    assert got.name == "pg" and got.status == "healthy" and got.configuration["hostname"] == "db.example"
    assert [c.id for c in strict(client.connections.list()).data] == [cid]

    # Full replacement (PUT, as the SDK sends it): the masked secret keeps the stored one, an omitted field is gone.
    configuration = {**got.configuration, "port": 6543}
    del configuration["database"]
    updated = strict(client.connections.update(cid, name="pg2", configuration=configuration)).data
    assert updated.name == "pg2" and updated.configuration["port"] == 6543
    assert "database" not in updated.configuration
    assert fake.secrets[cid]["password"] == "pg-pass-0f3e"

    with pytest.raises(UnprocessableEntityError) as refused:
        client.connections.update(cid, name="pg2", configuration={**configuration, "hostname": "gone.invalid"})
    assert refused.value.body.status == 422 and "configuration.hostname" in refused.value.body.message
    assert fake.connections[cid]["configuration"]["hostname"] == "db.example"  # a refused update changes nothing

    with pytest.raises(NotFoundError) as missing:
        client.connections.get("no-such-connection")
    assert missing.value.body.key == "http_404" and "no-such-connection" in missing.value.body.message

    sync_id = fake.add_bulk_sync()
    source = fake.bulk_syncs[sync_id]["source_connection_id"]
    with pytest.raises(UnprocessableEntityError, match="in use"):
        client.connections.delete(source)
    client.connections.delete(source, force=True)
    client.connections.delete(cid)
    assert source not in fake.connections and sync_id not in fake.bulk_syncs and cid not in fake.connections


def test_bulk_sync_create_update_activate(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    source = fake.add_connection("src", hostname="src.example", password="pw-src")
    dest = fake.add_connection("dest", "snowflake", account="acme")
    created = strict(
        client.bulk_sync.create(
            name="load",
            source_connection_id=source,
            destination_connection_id=dest,
            destination_configuration={"schema": "raw"},
            default_schedule={"frequency": "daily", "hour": "3", "minute": "0"},
            normalize_names="disabled",
            active=True,
        )
    ).data
    sid = created.id
    assert created.default_schedule.frequency == "daily" and created.default_schedule.hour == "3"
    assert created.normalize_names == "disabled" and created.active is True

    current = strict(client.bulk_sync.get(sid)).data
    # Full replacement: the fields the update leaves out reset to their defaults.
    updated = strict(
        client.bulk_sync.update(
            sid,
            name=current.name,
            source_connection_id=current.source_connection_id,
            destination_connection_id=current.destination_connection_id,
            destination_configuration=current.destination_configuration,
            default_schedule={"frequency": "hourly", "minute": "15"},
            active=True,
        )
    ).data
    assert updated.default_schedule.frequency == "hourly" and updated.default_schedule.minute == "15"
    assert updated.default_schedule.hour is None and updated.normalize_names == "enabled"

    with pytest.raises(BadRequestError, match="default_schedule.frequency"):
        client.bulk_sync.update(
            sid,
            name="load",
            source_connection_id=source,
            destination_connection_id=dest,
            destination_configuration={},
            default_schedule={"frequency": "sometimes"},
        )

    paused = strict(client.bulk_sync.activate(sid, active=False)).data
    assert (paused.id, paused.active) == (sid, False)
    assert strict(client.bulk_sync.get(sid)).data.active is False
    assert strict(client.bulk_sync.list(active=False), PAGINATED).data[0].id == sid
    assert strict(client.bulk_sync.activate(sid, active=True)).data.active is True

    with pytest.raises(NotFoundError):
        client.bulk_sync.activate("no-such-sync", active=True)
    client.bulk_sync.delete(sid)
    assert sid not in fake.bulk_syncs


def test_bulk_executions_over_time(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    sid = fake.add_bulk_sync()
    # Long enough that the 409 and status calls below (which also look at it) cannot see it finish on a busy machine.
    fake.run_seconds = 3
    started = strict(client.bulk_sync.start(sid, fetch_mode="incremental", resync_mode="resync")).data
    assert started.status == "created" and started.is_resync is True

    with pytest.raises(ConflictError):  # the SDK retries 409s; max_retries=0 shows the first answer
        client.bulk_sync.start(sid)
    status = strict(client.bulk_sync.get_status(sid)).data
    assert status.current_execution.id == started.id and status.last_execution is None

    seen, done = until_terminal(lambda: client.bulk_sync.executions.get(sid, started.id), {"completed"})
    assert seen[0] == "running" and seen[-1] == "completed" and done.record_count == 1234
    assert done.started_at is not None and done.completed_at >= done.started_at
    assert strict(client.bulk_sync.get_status(sid)).data.last_execution.id == started.id

    fake.run_seconds = 60
    running = strict(client.bulk_sync.start(sid, schemas=["public.orders"])).data
    assert strict(client.bulk_sync.executions.cancel(sid, running.id)).data.message
    seen, _ = until_terminal(lambda: client.bulk_sync.executions.get(sid, running.id), {"canceled"})
    assert seen == ["canceling", "canceled"]
    with pytest.raises(NotFoundError):  # nothing left to cancel
        client.bulk_sync.executions.cancel(sid, running.id)

    third = strict(client.bulk_sync.start(sid)).data
    client.bulk_sync.activate(sid, active=False)  # deactivating requests cancellation of what runs
    assert until_terminal(lambda: client.bulk_sync.executions.get(sid, third.id), {"canceled"})[1].id == third.id

    fourth = strict(client.bulk_sync.start(sid)).data
    assert strict(client.bulk_sync.cancel(sid)).data.message
    assert until_terminal(lambda: client.bulk_sync.executions.get(sid, fourth.id), {"canceled"})[1].id == fourth.id

    with pytest.raises(BadRequestError, match="resync_mode"):
        client.bulk_sync.start(sid, test=True, resync_mode="rebuild")
    with pytest.raises(BadRequestError, match="resync_mode"):  # the legacy boolean is refused at this version
        client.bulk_sync.start(sid, request_options={"additional_body_parameters": {"resync": True}})
    with pytest.raises(NotFoundError):
        client.bulk_sync.executions.get(sid, "no-such-execution")


def test_pagination(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    fake.run_seconds = 0
    sid = fake.add_bulk_sync()
    ids = []
    for _ in range(5):
        ids.append(strict(client.bulk_sync.start(sid)).data.id)
        until_terminal(lambda: client.bulk_sync.executions.get(sid, ids[-1]), {"completed"})

    pages, token = [], None
    while True:
        page = strict(client.bulk_sync.executions.list(sid, limit=2, page_token=token))
        pages.append([e.id for e in page.data])
        token = page.pagination.next_page_token
        if token is None:
            break
    assert pages == [ids[::-1][:2], ids[::-1][2:4], ids[::-1][4:]]
    ascending = strict(client.bulk_sync.executions.list(sid, ascending=True, only_terminal=True)).data
    assert [e.id for e in ascending] == ids
    with pytest.raises(ApiError) as bad:
        client.bulk_sync.executions.list(sid, page_token="not-a-token")
    assert bad.value.status_code == 400

    fake.page_sizes["bulk_syncs"] = 2
    for index in range(3):
        fake.add_bulk_sync(f"sync {index}")
    first = strict(client.bulk_sync.list(), PAGINATED)
    token = first.model_extra["pagination"]["next_page_token"]  # not in the SDK's list type; documented
    rest = client.bulk_sync.list(request_options={"additional_query_parameters": {"page_token": token}})
    assert (
        len(first.data) == 2 and len(rest.data) == 2 and {s.id for s in first.data + rest.data} == set(fake.bulk_syncs)
    )


def test_model_sync_executions(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    started = strict(client.model_sync.start("model-sync-1", resync=True)).data
    assert started.status == "created" and started.id in fake.executions
    with pytest.raises(ConflictError):
        client.model_sync.start("model-sync-1")
    seen, done = until_terminal(
        lambda: client.model_sync.executions.get("model-sync-1", started.id), {"completed", "failed"}
    )
    assert seen == ["running", "completed"] and done.counts.total == 1234 and done.counts.error == 0

    fake.run_seconds = 60
    running = strict(client.model_sync.start("model-sync-1")).data
    assert strict(client.model_sync.get_status("model-sync-1")).data.current_execution.id == running.id
    assert strict(client.model_sync.executions.cancel("model-sync-1", running.id)).data.message
    until_terminal(lambda: client.model_sync.executions.get("model-sync-1", running.id), {"canceled"})
    with pytest.raises(BadRequestError):
        client.model_sync.executions.cancel("model-sync-1", running.id)

    fake.page_sizes["model_executions"] = 1
    first = strict(client.model_sync.executions.list("model-sync-1"))
    second = strict(client.model_sync.executions.list("model-sync-1", page_token=first.pagination.next_page_token))
    assert [first.data[0].id, second.data[0].id] == [running.id, started.id]
    assert second.pagination.next_page_token is None
    with pytest.raises(NotFoundError):
        client.model_sync.start("no-such-sync")


def test_keys_versions_and_rate_limits(fake: FakePolytomic) -> None:
    assert strict(sdk_client(fake, deployment_key=True).connections.list()).data == []
    with pytest.raises(ApiError) as denied:
        Polytomic(base_url=fake.url, token="wrong-key-9a9a", max_retries=0).connections.list()
    assert denied.value.status_code == 401
    with pytest.raises(ApiError) as old:
        Polytomic(base_url=fake.url, token=fake.api_key, version="2024-02-08").connections.list()
    assert old.value.status_code == 400 and "X-Polytomic-Version" in old.value.body["message"]

    retrying = sdk_client(fake, max_retries=2)
    fake.inject(rate_limited(retry_after=1), path="/api/connections")
    retrying.connections.list()
    first, second = fake.requests_to("GET", "/api/connections")[-2:]
    assert second.received_at - first.received_at >= 1.0  # Retry-After honoured

    fake.rate_limit = (2, 1.0)  # the fake's own limiter: a third request within a second waits for the window
    before = len(fake.requests)
    for _ in range(3):
        retrying.connections.list()
    times = [r.received_at for r in fake.requests[before:]]
    assert len(times) == 4 and times[3] - times[0] >= 1.0


def test_what_lineage_reads_bulk_schemas_and_a_model_sync(fake: FakePolytomic) -> None:
    client = sdk_client(fake)
    sid = fake.add_bulk_sync(destination_configuration={"schema": "raw"})
    fake.schemas[sid] = [{"id": "public.accounts", "output_name": "accounts", "enabled": True}]
    schemas = strict(client.bulk_sync.schemas.list(sid)).data
    assert [(schema.id, schema.output_name, schema.enabled) for schema in schemas] == [
        ("public.accounts", "accounts", True)
    ]
    model_id = next(iter(fake.model_syncs))
    assert strict(client.model_sync.get(model_id)).data.id == model_id
    with pytest.raises(NotFoundError):
        client.model_sync.get("no-such-sync")
