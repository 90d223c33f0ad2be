"""The Fivetran hook held to Fivetran's own OpenAPI: what the API accepts, the hook accepts; what the hook sends,
the API accepts. (The fake checks every request body too; these tests check the hook directly.)"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_connectors.hooks.fivetran import CREATE_FIELDS, PATCH_FIELDS, FivetranHook, validate_fields
from airflow_connectors.hooks.retry_policy import RetryPolicy
from tests.fakes.fivetran import FakeFivetran
from tests.fakes.fivetran_spec import FivetranSpec, load_spec

SPEC = load_spec()
pytestmark = pytest.mark.skipif(SPEC is None, reason="Fivetran's OpenAPI (shared/contracts/) is not present")
FAST = RetryPolicy(backoff_base=0.01, backoff_max=0.05, budget_seconds=20)
# What the per-service create schemas add to NewConnectorRequestV1 (postgres_config_V1, ..._esm_keys_config_V1).
PER_SERVICE = {"config", "auth", "external_secrets_keys_config"}


def spec() -> FivetranSpec:
    assert SPEC is not None
    return SPEC


def example(schema: dict[str, Any]) -> Any:
    """A value the document allows for ``schema``: its first enum value, its example, or one of its type."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or (kind is None and "properties" in schema):
        return {name: example(sub) for name, sub in (schema.get("properties") or {}).items()}
    if "example" in schema and kind is not None:
        return schema["example"]
    return {"boolean": False, "integer": 0, "string": "x", "array": []}.get(str(kind), {})


def update_examples() -> dict[str, Any]:
    return {name: example(schema) for name, schema in spec().request_fields("UpdateConnectorRequest").items()}


def test_the_hook_knows_exactly_the_documents_fields() -> None:
    assert set(spec().request_fields("UpdateConnectorRequest")) == PATCH_FIELDS
    assert set(spec().request_fields("NewConnectorRequestV1")) | PER_SERVICE == CREATE_FIELDS


@pytest.mark.parametrize("field", sorted(PATCH_FIELDS))
def test_validate_patch_accepts_every_field_update_connector_request_accepts(field: str) -> None:
    patch = {field: update_examples()[field]}
    if field in ("trust_certificates", "trust_fingerprints", "run_setup_tests"):
        patch.update(paused=False, run_setup_tests=True)  # setup-test switches ride along a stored field
    assert spec().request_errors("PATCH", "/v1/connections/c1", patch) == []
    FivetranHook().validate_patch(patch, {"sync_frequency": 1440})


def test_a_patch_with_every_documented_field_is_sent_and_accepted(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection = hook.create_connector({"group_id": "g", "service": "postgres", "config": {"schema": "s"}})
    patch = {**update_examples(), "sync_frequency": 1440, "run_setup_tests": True, "paused": False}
    assert {"destination_configuration", "external_secrets_manager_id", "external_secrets_keys_config"} <= set(patch)
    hook.validate_patch(patch, connection)
    patched = hook.patch_connector(connection["id"], patch)
    assert patched["sync_frequency"] == 1440 and patched["daily_sync_time"] == patch["daily_sync_time"]


def test_create_accepts_the_documented_fields() -> None:
    fields = spec().request_fields("NewConnectorRequestV1")
    body = {name: example(schema) for name, schema in fields.items()}
    body.update(group_id="g", service="postgres", sync_frequency=1440, config={}, external_secrets_keys_config={})
    assert spec().request_errors("POST", "/v1/connections", body) == []
    validate_fields(body, creating=True)


def test_sync_frequency_is_an_integer_although_the_document_lists_strings() -> None:
    assert spec().request_errors("PATCH", "/v1/connections/c1", {"sync_frequency": 15}) == []
    assert spec().request_errors("PATCH", "/v1/connections/c1", {"sync_frequency": "15"}) != []
    with pytest.raises(ValueError, match="^sync_frequency"):
        FivetranHook().validate_patch({"sync_frequency": "15"})


def test_every_request_body_the_hook_sends_is_valid(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    body = {
        "group_id": "g",
        "service": "postgres",
        "config": {"schema": "s", "host": "db"},
        "sync_frequency": 1440,
        "daily_sync_time": "03:00",
        "schedule_type": "manual",
        "destination_schema_names": "SOURCE_NAMING",
        "trust_certificates": True,
        "run_setup_tests": False,
    }
    connection_id = hook.create_connector(body)["id"]
    hook.patch_connector(connection_id, {"paused": False, "config": {"host": "db2"}})
    hook.set_schedule(connection_id, {"sync_frequency": 60, "schedule_type": "auto"})
    hook.pause_connector(connection_id)
    hook.trigger_sync(connection_id, unpause=True)
    hook.trigger_sync(connection_id, force=True)
    hook.trigger_sync(connection_id, resync=True)
    hook.trigger_sync(connection_id, resync=["public.orders"])
    hook.trigger_sync(connection_id, resync={"sales.eu": ["orders"]})
    hook.run_setup_tests(connection_id, trust_certificates=True)

    sent = [r for r in fake_fivetran.requests if r.body is not None]
    operations = {(r.method, spec().operation(r.method, r.path)["operationId"]) for r in sent}  # type: ignore[index]
    assert len(operations) == 6, operations  # create, modify, sync, resync, resync tables, setup tests
    for request in sent:
        assert spec().request_errors(request.method, request.path, request.body) == [], request


def test_the_fake_answers_400_to_a_body_the_document_refuses(fake_fivetran: FakeFivetran) -> None:
    hook = FivetranHook(retry=FAST)
    connection = hook.create_connector({"group_id": "g", "service": "postgres", "config": {"schema": "s"}})
    session = requests.Session()
    session.auth = (fake_fivetran.api_key, fake_fivetran.api_secret)
    url = f"{fake_fivetran.url}/v1/connections/{connection['id']}"
    response = session.patch(url, json={"sync_frequency": "x"})
    assert response.status_code == 400 and "OpenAPI" in response.json()["message"]
    response = session.post(f"{url}/schemas/tables/resync", json={"public": "orders"})
    assert response.status_code == 400 and "['public']" in response.json()["message"]
    assert len(fake_fivetran.failures) == 2  # recorded: a hook sending these would fail its test
    fake_fivetran.failures.clear()
