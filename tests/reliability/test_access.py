"""Access: every endpoint of the served OpenAPI document but /health refuses missing and wrong tokens, and says
nothing about the resource while doing so."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import requests

from tests.fixtures.cdc_service import CdcService


@pytest.fixture(scope="module")
def locked(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service(workers=0)


def test_every_endpoint_needs_the_token(locked: CdcService) -> None:
    document = requests.get(f"{locked.url}/openapi.json", timeout=30).json()
    checked = 0
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": locked.token}):
                response = requests.request(
                    method.upper(), f"{locked.url}{concrete}", headers=headers, json={}, timeout=30
                )
                if path == "/health":
                    assert response.status_code == 200
                    continue
                assert response.status_code == 401, (method, path, headers, response.status_code)
                assert response.json()["error"]["code"] == "unauthorized"
                assert response.headers.get("WWW-Authenticate") == "Bearer"
                checked += 1
    assert checked >= 3 * 12
