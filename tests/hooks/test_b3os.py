"""B3osHook against the fake B3OS: typed data validated locally, masked data never sent back, clear limits."""

from __future__ import annotations

import pytest

from airflow_connectors.hooks.b3os import B3osHook, NotAPipeline
from airflow_connectors.hooks.http import ApiAuthError, ApiNotFound
from airflow_connectors.hooks.retry_policy import RetryPolicy
from tests.fakes.b3os import FakeB3os
from tests.fakes.server import rate_limited

FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=20)
DATA = {"host": "db.example", "port": 5432, "user": "u", "password": "b3os-db-pass-44"}


def test_create_get_patch(fake_b3os: FakeB3os) -> None:
    hook = B3osHook(retry=FAST)
    assert {t["type"] for t in hook.list_connector_types()} == {"postgres", "slack"}
    created = hook.create_connector({"name": "warehouse", "type": "postgres", "description": "prod", "data": DATA})
    assert created["maskedData"]["password"] == "****" and "data" not in created
    assert hook.get_connector(created["id"])["name"] == "warehouse"
    renamed = hook.patch_connector(created["id"], {"name": "warehouse-2"})
    assert renamed["name"] == "warehouse-2" and "data" not in fake_b3os.requests[-1].body
    with pytest.raises(ValueError, match="^data.password"):
        hook.patch_connector(created["id"], {"data": {"port": 6432}})  # the password would go back masked
    moved = hook.patch_connector(created["id"], {"data": {"port": 6432, "password": "new-b3os-pass-1"}})
    assert moved["maskedData"]["port"] == 6432
    assert fake_b3os.connectors[created["id"]]["_data"] == {**DATA, "port": 6432, "password": "new-b3os-pass-1"}
    with pytest.raises(ApiNotFound):
        hook.get_connector("missing")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "postgres", "data": {"host": "h", "user": "u"}}, "data"),
        ({"name": "x", "type": "postgres", "data": {**DATA, "port": 0}}, "data.port"),
        ({"name": "x", "type": "postgres", "data": DATA, "maskedData": {}}, "maskedData"),
        ({"type": "postgres", "data": DATA}, "name"),
    ],
)
def test_invalid_data_is_refused_before_sending(fake_b3os: FakeB3os, body: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        B3osHook(retry=FAST).create_connector(body)
    assert fake_b3os.requests_to("POST", "/v1/connectors") == []


def test_credentials_are_not_pipelines(fake_b3os: FakeB3os) -> None:
    hook = B3osHook(retry=FAST)
    for call in (lambda: hook.trigger_sync("c"), lambda: hook.set_schedule("c", {}), lambda: hook.pause_connector("c")):
        with pytest.raises(NotAPipeline, match="credentials, not pipelines"):
            call()
    with pytest.raises(ValueError, match="no connector listing"):
        hook.find_connector_by_name("x")


def test_retries_and_bad_token(fake_b3os: FakeB3os, airflow_connection) -> None:  # type: ignore[no-untyped-def]
    fake_b3os.inject(rate_limited(retry_after=1))
    assert B3osHook(retry=FAST).test_connection()[0] is True
    times = [r.received_at for r in fake_b3os.requests_to("GET", "/v1/connector-types")]
    assert times[1] - times[0] >= 1.0
    airflow_connection("b3os_default", conn_type="b3os", host=fake_b3os.url, password="bad-b3os-token-2")
    with pytest.raises(ApiAuthError) as caught:
        B3osHook(retry=FAST).get_connector("x")
    assert "bad-b3os-token-2" not in str(caught.value) and caught.value.request_id
