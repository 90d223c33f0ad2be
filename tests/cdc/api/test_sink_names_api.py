"""Two source tables that would share a sink table are refused at create, replace and patch, naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cdc.api.test_connectors_api import MERGE_PATCH, seed_body
from tests.fixtures.cdc_service import CdcService

CLASH_FIELD = "source.postgres.catalog.schemas.q3.tables.x.sink_table"


@pytest.fixture(scope="module")
def api(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service(workers=0)


def with_catalog(tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    body = seed_body()
    body["source"]["postgres"]["catalog"] = {"schemas": {schema: {"tables": entry} for schema, entry in tables.items()}}
    return body


def test_create_and_replace_refuse_a_sink_table_another_table_gets(api: CdcService) -> None:
    http = api.session()
    clash = with_catalog({"q1": {"w": {}}, "q3": {"x": {"sink_table": "w"}}})
    for response in (
        http.post(f"{api.api}/connectors", json=clash, timeout=30),
        http.post(f"{api.api}/connectors/named", json=clash, timeout=30),
    ):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == CLASH_FIELD and "'w' is the sink table name of q1.w" in error["message"]
    two_explicit = with_catalog({"q1": {"a": {"sink_table": "same"}}, "q3": {"x": {"sink_table": "same"}}})
    response = http.post(f"{api.api}/connectors", json=two_explicit, timeout=30)
    assert response.status_code == 422 and response.json()["error"]["field"] == CLASH_FIELD
    fine = with_catalog({"q1": {"w": {}}, "q2": {"w": {}}, "q3": {"q1_w": {}}})  # named apart by the rule
    assert http.post(f"{api.api}/connectors", json=fine, timeout=30).status_code == 201


def test_a_patch_that_makes_two_tables_share_a_sink_table_is_refused(api: CdcService) -> None:
    http = api.session()
    created = http.post(f"{api.api}/connectors", json=with_catalog({"q1": {"w": {}}}), timeout=30)
    assert created.status_code == 201, created.text
    url = f"{api.api}/connectors/{created.json()['connector']['id']}"
    patch = {"source": {"postgres": {"catalog": {"schemas": {"q3": {"tables": {"x": {"sink_table": "w"}}}}}}}}
    response = http.patch(url, data=json.dumps(patch), headers=MERGE_PATCH, timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == CLASH_FIELD
    assert "q3" not in http.get(url, timeout=30).json()["connector"]["source"]["postgres"]["catalog"]["schemas"]
    fine = {"source": {"postgres": {"catalog": {"schemas": {"q3": {"tables": {"x": {"sink_table": "x_copy"}}}}}}}}
    response = http.patch(url, data=json.dumps(fine), headers=MERGE_PATCH, timeout=30)
    assert response.status_code == 200, response.text


def test_the_hook_refuses_the_same_patch_before_sending_it() -> None:
    from airflow_connectors.hooks.cdc import CdcHook

    hook = CdcHook.__new__(CdcHook)
    current = {**with_catalog({"q1": {"w": {}}}), "id": "c1"}
    patch = {"source": {"postgres": {"catalog": {"schemas": {"q3": {"tables": {"x": {"sink_table": "w"}}}}}}}}
    with pytest.raises(ValueError, match=CLASH_FIELD.replace(".", r"\.")):
        hook.validate_patch(patch, current)
