"""The connector API of the real service process, on a real state store."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import requests

from tests.cdc.api.test_models import SEED_MINIMAL_BODY
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture(scope="module")
def api(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    """A service without run workers: these tests are about the connector resource, not runs."""
    return start_cdc_service(workers=0)


@pytest.fixture
def http(api: CdcService) -> requests.Session:
    return api.session()


def seed_body(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SEED_MINIMAL_BODY)
    body.update(changes)
    return body


def create(api: CdcService, http: requests.Session, **changes: Any) -> dict[str, Any]:
    response = http.post(f"{api.api}/connectors", json=seed_body(**changes), timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_minimal_seed_body_is_created_fully_defaulted_with_masked_secrets(
    api: CdcService, http: requests.Session
) -> None:
    response = http.post(f"{api.api}/connectors", json=seed_body(id=""), timeout=30)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"connector", "status", "run_id", "created_at"}
    connector = body["connector"]
    assert connector["id"] not in ("", "string")
    source = connector["source"]["postgres"]
    assert source["connection"]["port"] == 5432 and source["connection"]["ssl_mode"] == "Prefer"
    assert source["parallel_snapshots_enabled"] is True and source["partitions_as_root"] is False
    assert source["replication_type"]["logical_replication"]["retry_window_seconds"] == 300
    assert connector["disabled"] is False and connector["sink"]["postgres"]["target_schema"] == "public"
    assert "pa$$word" not in response.text and source["connection"]["password"] == "********"
    assert body["status"]["state"] == "idle" and body["run_id"] is None
    assert response.headers["ETag"]
    fetched = http.get(f"{api.api}/connectors/{connector['id']}", timeout=30)
    assert fetched.status_code == 200 and fetched.json()["connector"] == connector


def test_server_generates_ids_and_the_body_id_is_required(api: CdcService, http: requests.Session) -> None:
    first, second = create(api, http), create(api, http)
    assert first["connector"]["id"] != second["connector"]["id"]
    body = seed_body()
    del body["id"]
    response = http.post(f"{api.api}/connectors", json=body, timeout=30)
    assert response.status_code == 422 and response.json()["error"]["field"] == "id"


def test_create_or_replace_with_the_path_id(api: CdcService, http: requests.Session) -> None:
    url = f"{api.api}/connectors/orders-cdc"
    http.delete(url, params={"keep_replication_objects": "true"}, timeout=30)
    created = http.post(url, json=seed_body(id="ignored", name="first"), timeout=30)
    assert created.status_code == 201 and created.json()["connector"]["id"] == "orders-cdc"
    replacement = created.json()["connector"]  # as read: masked secrets
    replacement["name"] = "second"
    replaced = http.post(url, json=replacement, timeout=30)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["connector"]["name"] == "second"
    assert replaced.json()["created_at"] == created.json()["created_at"]
    moved = copy.deepcopy(replacement)
    moved["source"]["postgres"]["connection"]["host"] = "elsewhere.example"
    response = http.post(url, json=moved, timeout=30)
    assert response.status_code == 422 and response.json()["error"]["field"] == "source.postgres.connection.host"


def test_merge_patch(api: CdcService, http: requests.Session) -> None:
    connector = create(api, http, name="patch-me", schedule={"interval_seconds": 60})["connector"]
    url = f"{api.api}/connectors/{connector['id']}"
    patch = {
        "name": None,
        "schedule": {"interval_seconds": None, "cron": "*/15 * * * *", "timezone": "Europe/Paris"},
        "sink": {"postgres": {"target_schema": "replica", "connection": {"password": "********"}}},
        "source": {"postgres": {"catalog": {"schemas": {"public": {"tables": {"orders": {}}}}}}},
    }
    response = http.patch(url, data=json.dumps(patch), headers=MERGE_PATCH, timeout=30)
    assert response.status_code == 200, response.text
    patched = response.json()["connector"]
    assert patched["name"] is None
    assert patched["schedule"] == {"interval_seconds": None, "cron": "*/15 * * * *", "timezone": "Europe/Paris"}
    assert patched["sink"]["postgres"]["target_schema"] == "replica"
    assert patched["source"]["postgres"]["catalog"] == {
        "schemas": {
            "public": {"tables": {"orders": {"include_columns": None, "exclude_columns": None, "sink_table": None}}}
        }
    }
    assert patched["source"]["postgres"]["connection"] == connector["source"]["postgres"]["connection"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"source": {"postgres": {"connection": {"host": "other"}}}}, "source.postgres.connection.host"),
        ({"sink": {"postgres": {"connection": {"port": 1}}}}, "sink.postgres.connection.port"),
        ({"source": {"postgres": {"connection": {"database": "d2"}}}}, "source.postgres.connection.database"),
        ({"sink": {"snowflake": {}}}, "sink.snowflake"),
        ({"source": {"postgres": {"connection": {"user": None}}}}, "source.postgres.connection.user"),
        ({"schedule": {"interval_seconds": 1}}, "schedule.interval_seconds"),
        ({"disabled": "maybe"}, "disabled"),
    ],
)
def test_rejected_patches(api: CdcService, http: requests.Session, patch: dict[str, Any], field: str) -> None:
    connector_id = create(api, http)["connector"]["id"]
    url = f"{api.api}/connectors/{connector_id}"
    response = http.patch(url, data=json.dumps(patch), headers=MERGE_PATCH, timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert http.get(url, timeout=30).json()["connector"]["name"] is None  # nothing changed


def test_patch_content_type_and_body_errors(api: CdcService, http: requests.Session) -> None:
    url = f"{api.api}/connectors/{create(api, http)['connector']['id']}"
    assert http.patch(url, json={"name": "x"}, timeout=30).status_code == 415
    assert http.patch(url, data="{", headers=MERGE_PATCH, timeout=30).status_code == 400
    response = http.post(f"{api.api}/connectors", data="not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"
    assert http.post(f"{api.api}/connectors", data="x", headers={"Content-Type": "text/plain"}).status_code == 415
    huge = http.post(f"{api.api}/connectors", data="[" * 2_000_000, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    deep = http.post(
        f"{api.api}/connectors", data="[" * 5000 + "]" * 5000, headers={"Content-Type": "application/json"}
    )
    assert deep.status_code in (400, 422)


def test_if_match_and_concurrent_patches(api: CdcService, http: requests.Session) -> None:
    created = http.post(f"{api.api}/connectors", json=seed_body(), timeout=30)
    url = f"{api.api}/connectors/{created.json()['connector']['id']}"
    etag = created.headers["ETag"]
    first = http.patch(url, data='{"name": "a"}', headers={**MERGE_PATCH, "If-Match": etag}, timeout=30)
    assert first.status_code == 200 and first.headers["ETag"] != etag
    stale = http.patch(url, data='{"name": "b"}', headers={**MERGE_PATCH, "If-Match": etag}, timeout=30)
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "version_mismatch"
    # Without If-Match, patches of different fields from concurrent clients are all kept (row lock + merge).
    import threading

    patches = [{"buffer": {"max_rows": 1000}}, {"limits": {"max_rows_per_run": 5}}, {"disabled": True}, {"name": "z"}]
    threads = [
        threading.Thread(target=lambda p=p: api.session().patch(url, data=json.dumps(p), headers=MERGE_PATCH))
        for p in patches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = http.get(url, timeout=30).json()["connector"]
    assert final["buffer"]["max_rows"] == 1000 and final["limits"]["max_rows_per_run"] == 5
    assert final["disabled"] is True and final["name"] == "z"


def test_get_list_delete(api: CdcService, http: requests.Session) -> None:
    name = "listed-connector"
    ids = [create(api, http, name=name)["connector"]["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"name": name, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{api.api}/connectors", params=params, timeout=30).json()
        seen += [item["connector"]["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert all("pa$$word" not in json.dumps(item) for item in page["items"])
    response = http.delete(f"{api.api}/connectors/{ids[0]}", params={"keep_replication_objects": "true"})
    assert response.status_code == 204
    missing = http.get(f"{api.api}/connectors/{ids[0]}", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert http.delete(f"{api.api}/connectors/{ids[0]}").status_code == 404


def test_commands(api: CdcService, http: requests.Session) -> None:
    connector_id = create(api, http)["connector"]["id"]
    url = f"{api.api}/connectors/{connector_id}/commands"
    paused = http.post(url, json={"command": "pause"}, timeout=30)
    assert paused.status_code == 200 and paused.json()["status"]["state"] == "paused"
    blocked = http.post(url, json={"command": "start"}, timeout=30)
    assert blocked.status_code == 409 and blocked.json()["error"]["code"] == "connector_inactive"
    resumed = http.post(url, json={"command": "resume"}, timeout=30)
    assert resumed.json()["status"]["state"] == "idle"
    started = http.post(url, json={"command": "start"}, timeout=30)
    assert started.status_code == 200 and started.json()["run_id"]
    assert started.json()["status"]["state"] == "running"  # queued: no worker in this service
    again = http.post(url, json={"command": "start"}, timeout=30)
    assert again.status_code == 409 and again.json()["error"]["run_id"] == started.json()["run_id"]
    stopped = http.post(url, json={"command": "stop"}, timeout=30)
    assert stopped.json()["status"]["last_run"]["state"] == "cancelled"
    bad = http.post(url, json={"command": "explode"}, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "command"


def test_auth(api: CdcService) -> None:
    assert requests.get(f"{api.url}/health", timeout=30).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {api.token}"}):
        for method, path in (("GET", "/connectors"), ("POST", "/connectors"), ("GET", "/connectors/x/runs")):
            response = requests.request(method, f"{api.api}{path}", headers=headers, json={}, timeout=30)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "unauthorized" and api.token not in response.text


def test_secrets_are_encrypted_at_rest(api: CdcService, http: requests.Session) -> None:
    connector_id = create(api, http)["connector"]["id"]
    with psycopg.connect(api.state_dsn) as conn:
        row = conn.execute("SELECT document::text FROM connectors WHERE id = %s", (connector_id,)).fetchone()
    assert row is not None and "pa$$word" not in row[0] and '"password": "fernet:' in row[0]


def test_state_survives_a_restart(start_cdc_service: Callable[..., CdcService]) -> None:
    service = start_cdc_service(workers=0)
    http = service.session()
    connector_id = create(service, http, name="durable")["connector"]["id"]
    service.kill()
    again = start_cdc_service(service.state_dsn, workers=0, token=service.token, secret_key=service.secret_key)
    response = again.session().get(f"{again.api}/connectors/{connector_id}", timeout=30)
    assert response.status_code == 200 and response.json()["connector"]["name"] == "durable"
    again.stop()


def test_validate_source_and_sink(api: CdcService, http: requests.Session, pg_server: PgServer, make_database) -> None:
    dsn = make_database("src")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v text)")
    database = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    connection = {
        "host": pg_server.host,
        "port": pg_server.port,
        "user": pg_server.user,
        "password": pg_server.password,
        "database": database,
    }
    source = {"postgres": {"connection": connection, "replication_type": {"logical_replication": {}}}}
    report = http.post(f"{api.api}/validate/source", json=source, timeout=30).json()
    steps = {step["name"]: step for step in report["steps"]}
    assert report["ok"] is False and steps["wal_level"]["passed"] and steps["replication_privilege"]["passed"]
    assert not steps["replica_identity"]["passed"] and "public.loose" in steps["replica_identity"]["message"]
    source["postgres"]["catalog"] = {"schemas": {"public": {"tables": {"keyed": {}}}}}
    assert http.post(f"{api.api}/validate/source", json=source, timeout=30).json()["ok"] is True
    source["postgres"]["catalog"] = {"schemas": {"public": {"tables": {"nope": {}}}}}
    report = http.post(f"{api.api}/validate/source", json=source, timeout=30).json()
    assert "public.nope" in {s["name"]: s for s in report["steps"]}["catalog_tables"]["message"]
    wrong = {"postgres": {"connection": {**connection, "password": "wrong-password"}}}
    report = http.post(f"{api.api}/validate/sink", json=wrong, timeout=30).json()
    assert report["ok"] is False and report["steps"][0]["name"] == "connect"
    assert "wrong-password" not in json.dumps(report) and pg_server.password not in json.dumps(report)
    body = seed_body(source=source, sink={"postgres": {"connection": connection}})
    connector_id = http.post(f"{api.api}/connectors", json=body, timeout=30).json()["connector"]["id"]
    report = http.post(f"{api.api}/validate/sink", params={"connector_id": connector_id}, timeout=30).json()
    assert report["ok"] is True, report


def test_the_seeds_full_example_round_trips(api: CdcService, http: requests.Session) -> None:
    from tests.cdc.api.test_models import SEED_FULL_EXAMPLE

    response = http.post(f"{api.api}/connectors", json=SEED_FULL_EXAMPLE, timeout=30)
    assert response.status_code == 201, response.text
    connection = response.json()["connector"]["source"]["postgres"]["connection"]
    assert (connection["password"], connection["ssl_key"], connection["ssl_cert"]) == ("********", "********", "string")
    assert "pa$$word" not in response.text
    echoed = response.json()["connector"]  # what a client read, sent back as a replace: masked secrets are kept
    replaced = http.post(f"{api.api}/connectors/{echoed['id']}", json=echoed, timeout=30)
    assert replaced.status_code == 200, replaced.text
