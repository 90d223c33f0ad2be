"""Schemathesis against the served ``/openapi.json``: no 5xx for any input, no stored secret in any response."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.cdc.api.test_models import SEED_MINIMAL_BODY
from tests.fixtures.cdc_service import CdcService

STORED_PASSWORD = "fuzz-stored-password-7f3a"


@schemathesis.serializer("application/merge-patch+json")
def _merge_patch(ctx: Any, value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.fixture(scope="module")
def fuzzed_service(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    service = start_cdc_service(workers=0)
    body = json.loads(json.dumps(SEED_MINIMAL_BODY).replace("pa$$word", STORED_PASSWORD))
    for connector_id in ("string", "a", "0"):  # ids generators like to produce
        response = service.session().post(f"{service.api}/connectors/{connector_id}", json=body, timeout=30)
        assert response.status_code in (200, 201), response.text
    return service


@pytest.mark.slow
def test_no_server_errors_and_no_secrets(fuzzed_service: CdcService) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_service.url}/openapi.json")
    auth = {"Authorization": f"Bearer {fuzzed_service.token}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            if case.method.upper() == "DELETE":  # keep the seeded connectors' (nonexistent) slots out of it
                case.query = {"keep_replication_objects": "true"}
            response = case.call(headers=auth, timeout=30)
            assert response.status_code < 500, (
                f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
            )
            assert STORED_PASSWORD not in response.text and fuzzed_service.token not in response.text
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, response.text[:300]

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) >= 12, checked
    log = fuzzed_service.log()
    assert STORED_PASSWORD not in log and fuzzed_service.token not in log
