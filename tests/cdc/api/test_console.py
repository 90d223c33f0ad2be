"""The web console over HTTP (the browser tests are in tests/ui): sign-in, cookies, CSRF, escaping, no secrets,
and that its actions obey the API's rules. Real service process, real engine, real PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import SimpleCookie

import psycopg
import pytest
import requests

from airflow_connectors.cdc.api.console.session import Signer
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.console import (
    SHOP_TABLES,
    ConsoleClient,
    connector_body,
    run_once,
    shop_connector,
    wait_run,
)

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def service(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service()


@pytest.fixture
def console(service: CdcService) -> ConsoleClient:
    return ConsoleClient.signed_in(service)


def _session_cookie(response: requests.Response) -> SimpleCookie:
    cookies = SimpleCookie()
    for header in response.raw.headers.getlist("set-cookie"):
        cookies.load(header)
    return cookies


def test_pages_need_a_session_and_sign_in_returns_to_the_page(service: CdcService) -> None:
    anonymous = ConsoleClient(service, requests.Session())
    for path in ("/", "/connectors/x", "/connectors/x/runs/y"):
        response = anonymous.page(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/sign-in?next=%2Fconsole%2F")
    sign_in = anonymous.page("/sign-in")
    assert sign_in.status_code == 200 and "API token" in sign_in.text
    assert anonymous.sign_in("wrong-token").status_code == 401
    assert anonymous.page("/").status_code == 303  # still signed out
    response = anonymous.sign_in(service.token, next_path="/console/connectors/x/runs/y")
    assert response.status_code == 303 and response.headers["location"] == "/console/connectors/x/runs/y"
    assert anonymous.page("/").status_code == 200
    again = anonymous.page("/sign-in?next=/console/connectors/x")  # signed in already: straight through
    assert again.status_code == 303 and again.headers["location"] == "/console/connectors/x"


def test_session_cookie_is_httponly_strict_expiring_and_signed(service: CdcService) -> None:
    client = ConsoleClient(service, requests.Session())
    response = client.sign_in(service.token)
    cookie = _session_cookie(response)["cdc_console_session"]
    assert cookie["httponly"] is True and cookie["samesite"] == "strict" and cookie["path"] == "/console"
    assert 0 < int(cookie["max-age"]) <= 8 * 3600
    assert service.token not in response.headers["set-cookie"]
    # A tampered or foreign cookie is no session.
    forged = requests.Session()
    body, mac = cookie.value.split(".")
    forged.cookies.set("cdc_console_session", f"{body}.{mac[:-2]}AA", path="/console")
    assert forged.get(f"{service.url}/console/", allow_redirects=False, timeout=30).status_code == 303
    other = Signer("x" * 44, service.token).sign({"sid": "attacker"}, 3600)
    forged.cookies.set("cdc_console_session", other, path="/console")
    assert forged.get(f"{service.url}/console/", allow_redirects=False, timeout=30).status_code == 303


def test_expired_cookies_are_refused() -> None:
    signer = Signer("k" * 44, "token")
    assert signer.unsign(signer.sign({"sid": "s"}, 60)) is not None
    assert signer.unsign(signer.sign({"sid": "s"}, -1)) is None
    assert Signer("k" * 44, "rotated-token").unsign(signer.sign({"sid": "s"}, 60)) is None  # new token: signed out


def test_sign_in_needs_its_form_token_and_next_stays_on_this_site(service: CdcService) -> None:
    bare = requests.post(
        f"{service.url}/console/sign-in", data={"token": service.token}, allow_redirects=False, timeout=30
    )
    assert bare.status_code == 403 and "cdc_console_session" not in bare.headers.get("set-cookie", "")
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        # A fresh browser each time: a signed-in one is sent on from the sign-in page without a form.
        response = ConsoleClient(service, requests.Session()).sign_in(service.token, next_path=evil)
        assert response.status_code == 303 and response.headers["location"] == "/console/"


def test_every_action_is_refused_without_this_sessions_csrf_token(
    service: CdcService, console: ConsoleClient, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    connector_id = shop_connector(service, pg_server, make_database)
    other = ConsoleClient.signed_in(service)
    actions = [
        (f"/connectors/{connector_id}/runs", {"mode": "catch_up"}),
        (f"/connectors/{connector_id}/commands", {"command": "pause"}),
        (f"/connectors/{connector_id}/runs/any/cancel", {}),
        ("/sign-out", {}),
    ]
    for path, data in actions:
        for token in (None, "forged", other.csrf()):
            response = console.post(path, data, csrf=token)
            assert response.status_code == 403, (path, token, response.status_code)
    api = service.session().get(f"{service.api}/connectors/{connector_id}", timeout=30).json()
    assert api["run_id"] is None and api["status"]["paused"] is False  # nothing happened
    assert console.page("/").status_code == 200  # still signed in


@pytest.mark.slow
def test_actions_follow_the_api_rules(
    service: CdcService, console: ConsoleClient, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    connector_id = shop_connector(service, pg_server, make_database)
    paused = console.post(f"/connectors/{connector_id}/commands", {"command": "pause"})
    assert paused.status_code == 303
    page = console.page(f"/connectors/{connector_id}")
    assert "Paused: no runs start until it is resumed." in page.text and 'data-state="paused"' in page.text
    refused = console.post(f"/connectors/{connector_id}/runs", {"mode": "catch_up"})
    assert refused.headers["location"] == f"/console/connectors/{connector_id}"
    assert f"connector {connector_id} is paused" in console.page(f"/connectors/{connector_id}").text
    assert console.post(f"/connectors/{connector_id}/commands", {"command": "resume"}).status_code == 303
    started = console.post(f"/connectors/{connector_id}/runs", {"mode": "catch_up"})
    run_id = started.headers["location"].rsplit("/", 1)[1]
    assert started.headers["location"] == f"/console/connectors/{connector_id}/runs/{run_id}"
    run = wait_run(service, connector_id, run_id)
    assert run["state"] == "succeeded" and {t: s["rows"] for t, s in run["tables"].items()} == SHOP_TABLES
    page = console.page(f"/connectors/{connector_id}/runs/{run_id}")
    assert 'data-state="succeeded"' in page.text and 'data-rows="1000"' in page.text
    assert re.search(r"queued.*snapshotting.*succeeded", page.text, re.S)  # the timeline
    empty = console.post(f"/connectors/{connector_id}/runs", {"mode": "catch_up", "resync": "selected"})
    assert "Choose the tables to resync first." in console.page(empty.headers["location"].removeprefix("/console")).text


@pytest.mark.slow
def test_no_secret_on_any_page(
    service: CdcService, console: ConsoleClient, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    connector_id = shop_connector(service, pg_server, make_database)
    run = run_once(service, connector_id)
    pages = [
        console.page(path)
        for path in ("/", f"/connectors/{connector_id}", f"/connectors/{connector_id}/runs/{run['run_id']}")
    ]
    for page in pages:
        assert page.status_code == 200
        assert pg_server.password not in page.text and service.token not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "********" in pages[1].text  # the definition is shown, masked


def test_values_are_escaped(service: CdcService, console: ConsoleClient, pg_server: PgServer) -> None:
    body = connector_body(pg_server, "postgres", "postgres", HOSTILE)
    created = service.session().post(f"{service.api}/connectors", json=body, timeout=30)
    connector_id = created.json()["connector"]["id"]
    for path in ("/", f"/connectors/{connector_id}", f"/?q={HOSTILE}"):
        html = console.page(path).text
        assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    missing = console.page("/connectors/%3Cimg%20src%3Dx%3E")
    assert missing.status_code == 404 and "<img src=x>" not in missing.text and "&lt;img src=x&gt;" in missing.text


def test_run_history_pages(
    service: CdcService, console: ConsoleClient, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    connector_id = shop_connector(service, pg_server, make_database)
    with psycopg.connect(service.state_dsn, autocommit=True) as conn:  # history: one run more than a page
        conn.execute(
            "INSERT INTO runs (run_id, connector_id, state, mode, trigger, finished_at)"
            " SELECT gen_random_uuid()::text, %s, 'cancelled', 'catch_up', 'api', now() FROM generate_series(1, 21)",
            (connector_id,),
        )
    first = console.page(f"/connectors/{connector_id}").text
    older = re.search(r'href="(/console/connectors/[^"?]+\?cursor=[^"]+)" rel="next"', first)
    assert older, "no link to older runs"
    second = console.http.get(f"{service.url}{older.group(1)}", timeout=30).text
    assert first.count("/runs/") > second.count("/runs/") > 0
    assert 'rel="next"' not in second and "Newest runs" in second


def test_sign_out_ends_the_session(service: CdcService, console: ConsoleClient) -> None:
    response = console.post("/sign-out", {})
    assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    assert console.page("/").status_code == 303
