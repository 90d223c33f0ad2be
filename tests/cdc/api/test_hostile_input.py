"""Input an attacker (or a broken client) sends: control characters in ids (log injection), lone surrogates in
values, a state store that just restarted, and whether the API documents need the token."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres
from tests.cdc.api.test_connectors_api import create, seed_body
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.secret_scan import register_secret


@pytest.fixture(scope="module")
def api(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service(workers=0)


@pytest.mark.parametrize("bad_id", ["a\r\nINFO forged log line", "tab\there", "nul\x7f", "bidi\u202eflip", "ls\u2028x"])
def test_control_characters_in_ids_are_refused(api: CdcService, bad_id: str) -> None:
    http = api.session()
    quoted = requests.utils.quote(bad_id, safe="")
    created = http.post(f"{api.api}/connectors/{quoted}", json=seed_body(), timeout=30)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["field"] == "connector_id"
    for method, path in (("GET", ""), ("GET", "/runs"), ("POST", "/runs"), ("DELETE", "")):
        response = http.request(method, f"{api.api}/connectors/{quoted}{path}", json={}, timeout=30)
        assert response.status_code == 422, (method, path, response.text)
    connector_id = create(api, http)["connector"]["id"]
    run = http.get(f"{api.api}/connectors/{connector_id}/runs/{quoted}", timeout=30)
    assert run.status_code == 422 and run.json()["error"]["field"] == "run_id"
    assert "forged log line" not in Path(api.log_path).read_text(errors="replace")


@pytest.mark.parametrize("where", ["password", "user", "name"])
def test_a_lone_surrogate_is_a_422(api: CdcService, where: str) -> None:
    body = seed_body(name="surrogate")
    if where == "name":
        body["name"] = "PLACEHOLDER"
        field = "name"
    else:
        body["source"]["postgres"]["connection"][where] = "PLACEHOLDER"
        field = f"source.postgres.connection.{where}"
    import json

    raw = json.dumps(body).replace("PLACEHOLDER", "x\\ud800y")  # valid JSON, not valid Unicode
    response = api.session().post(
        f"{api.api}/connectors", data=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.fixture
def restartable_store() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="airflow-connectors-state-restart-")) / "pg").start()
    register_secret(server.password)
    server.create_database("cdc_state")
    yield server
    server.destroy()


@pytest.mark.slow
def test_the_first_requests_after_a_state_store_restart_succeed(
    start_cdc_service: Callable[..., CdcService], restartable_store: EmbeddedPostgres
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service = start_cdc_service(restartable_store.conninfo("cdc_state"), workers=0)
    http = service.session()
    connector_id = create(service, http)["connector"]["id"]
    with ThreadPoolExecutor(16) as pool:  # fills the pool (10): every idle connection is about to go stale
        assert {
            r.status_code for r in pool.map(lambda _: http.get(f"{service.api}/connectors", timeout=30), range(64))
        } == {200}
    restartable_store.restart()
    http = service.session()  # uvicorn closed the idle keep-alive connections meanwhile
    codes = [http.get(f"{service.api}/connectors/{connector_id}", timeout=30).status_code for _ in range(12)]
    assert codes == [200] * 12, codes
    service.stop()


@pytest.mark.slow  # starts a second service
def test_docs_without_a_token_is_a_setting(api: CdcService, start_cdc_service: Callable[..., CdcService]) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):  # default: public, the schema carries no data
        assert requests.get(f"{api.url}{path}", timeout=30).status_code == 200, path
    private = start_cdc_service(workers=0, env={"CDC_DOCS_NEED_TOKEN": "true"})
    for path in ("/docs", "/redoc", "/openapi.json"):
        refused = requests.get(f"{private.url}{path}", timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized", path
        assert private.session().get(f"{private.url}{path}", timeout=30).status_code == 200, path
    assert "/api/v1/connectors" in private.session().get(f"{private.url}/openapi.json", timeout=30).json()["paths"]
    assert requests.get(f"{private.url}/health", timeout=30).status_code == 200
    private.stop()


@pytest.mark.parametrize("cursor", ["²", "9" * 5000, "9" * 30, "-1", " 1"])
def test_odd_cursors_are_a_422(api: CdcService, cursor: str) -> None:
    http = api.session()
    connector_id = create(api, http)["connector"]["id"]
    for path in ("/connectors", f"/connectors/{connector_id}/runs"):
        response = http.get(f"{api.api}{path}", params={"cursor": cursor}, timeout=30)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["field"] == "cursor"
