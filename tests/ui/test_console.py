"""The console in a real browser (Debian's Chromium via Playwright) against the real service, its real engine and
real PostgreSQL: sign in, find a connector, start a run and watch it succeed, resync a table, cancel a continuous
run, a hostile name shown as text, and Airflow's "Connector run" link opening the run's page.

``CONSOLE_SCREENSHOTS=docs/ui`` also saves a screenshot of each page there (the README shows them).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.console import SHOP_TABLES, connector_body, run_once, shop_connector, wait_run
from tests.ui.browser import launch, require_browser, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

HOSTILE = "<script>alert(1)</script>"
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def service(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookies) per test; JavaScript dialogs are recorded (none may open) and the
    browser's console must stay free of errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))  # type: ignore[attr-defined]
    # Script errors and CSP violations ("Refused to apply inline style ...") show as console errors; HTTP error
    # statuses are logged there too, and the wrong-token sign-in answers 401 on purpose.
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield page
    context.close()
    assert errors == []


@pytest.fixture
def signed_in(page: Page, service: CdcService) -> Page:
    page.goto(f"{service.url}/console/")
    sign_in(page, service.token)
    page.get_by_role("heading", name="Connectors").wait_for()
    return page


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"console_{name}.png"), full_page=True)


def run_state(page: Page) -> str:
    return str(page.locator("#run-state [data-state]").get_attribute("data-state"))


def table_rows(page: Page) -> dict[str, int]:
    cells = page.locator("#run-tables tbody tr")
    return {
        str(cells.nth(i).get_attribute("data-table")): int(
            str(cells.nth(i).locator("[data-rows]").get_attribute("data-rows"))
        )
        for i in range(cells.count())
    }


def run_id_of(page: Page) -> str:
    match = re.search(r"/runs/([^/?#]+)$", page.url)
    assert match, page.url
    return match.group(1)


def test_sign_in_find_a_connector_start_a_run_and_watch_it_succeed(
    page: Page, service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    sources: list[str] = []
    connector_id = shop_connector(service, pg_server, make_database, name=name, sources=sources)
    shop_connector(service, pg_server, make_database, name=f"other-{uuid.uuid4().hex[:6]}")

    page.goto(f"{service.url}/console/")
    assert "/console/sign-in" in page.url
    screenshot(page, "sign_in")
    sign_in(page, "not-the-token")
    page.get_by_text("That is not the service's API token.").wait_for()
    sign_in(page, service.token)
    page.get_by_role("heading", name="Connectors").wait_for()

    cookie = next(c for c in page.context.cookies() if c["name"] == "cdc_console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert time.time() < cookie["expires"] <= time.time() + 8 * 3600 + 60
    assert service.token not in cookie["value"]

    page.get_by_label("Find").fill(name)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.list tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and rows.first.get_attribute("data-connector-id") == connector_id
    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", name=name).wait_for()

    page.get_by_role("button", name="Start catch-up run").click()
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.get_by_text("Started a catch-up run.").wait_for()
    # The page refreshes itself (console.js) until the run ends.
    page.locator('#run-state [data-state="succeeded"]').wait_for(timeout=RUN_TIMEOUT_MS)
    assert table_rows(page) == SHOP_TABLES
    timeline = page.locator("ol.timeline [data-state]").evaluate_all("nodes => nodes.map(n => n.dataset.state)")
    assert timeline[0] == "queued" and timeline[-1] == "succeeded" and "snapshotting" in timeline
    run = wait_run(service, connector_id, run_id_of(page))
    assert run["state"] == "succeeded"
    assert pg_server.password not in page.content()
    screenshot(page, "run")

    # Changes made since are carried by the next run, started from the connector page.
    with psycopg.connect(sources[0], autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, 1, 2.5 FROM generate_series(1001, 1150) g")
        conn.execute("UPDATE customers SET name = name || '!' WHERE id <= 20")
    page.get_by_role("link", name=name).click()
    page.get_by_role("button", name="Start catch-up run").click()
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.locator('#run-state [data-state="succeeded"]').wait_for(timeout=RUN_TIMEOUT_MS)
    counts = page.locator('#run-tables tr[data-table="public.orders"] td').all_inner_texts()
    assert counts[:4] == ["public.orders", "150", "0", "0"]  # table, inserts, updates, deletes
    assert page.locator('#run-tables tr[data-table="public.customers"] td').all_inner_texts()[2] == "20"

    page.get_by_role("link", name=name).click()
    page.get_by_role("heading", name="Tables").wait_for()
    assert page.locator("#history [data-state=succeeded]").count() == 2
    assert page.locator("svg.chart").count() == 2
    orders = page.locator("#resync tbody tr", has_text="public.orders").locator("td").all_inner_texts()
    assert orders[1:] == ["public.orders", "1,150", orders[3], "2"]  # rows over both runs, bytes, runs
    screenshot(page, "connector")
    page.goto(f"{service.url}/console/")
    screenshot(page, "connectors")
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_resync_a_chosen_table(
    signed_in: Page, service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    page = signed_in
    connector_id = shop_connector(service, pg_server, make_database)
    assert run_once(service, connector_id)["state"] == "succeeded"

    page.goto(f"{service.url}/console/connectors/{connector_id}")
    page.get_by_label("resync public.customers").check()
    page.get_by_role("button", name="Resync selected tables").click()
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.get_by_text("resyncing public.customers").wait_for()
    page.locator('#run-state [data-state="succeeded"]').wait_for(timeout=RUN_TIMEOUT_MS)
    run = wait_run(service, connector_id, run_id_of(page))
    assert run["resync"] == ["public.customers"]
    assert run["tables"]["public.customers"]["rows"] == SHOP_TABLES["public.customers"]
    assert table_rows(page)["public.customers"] == SHOP_TABLES["public.customers"]


def test_cancel_a_continuous_run(
    signed_in: Page, service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    page = signed_in
    connector_id = shop_connector(service, pg_server, make_database)
    page.goto(f"{service.url}/console/connectors/{connector_id}")
    page.get_by_role("button", name="Start continuous run").click()
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    page.locator('#run-state [data-state="streaming"]').wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_text("Cancel requested.").wait_for()
    page.locator('#run-state [data-state="cancelled"]').wait_for(timeout=RUN_TIMEOUT_MS)
    assert wait_run(service, connector_id, run_id_of(page))["state"] == "cancelled"
    assert page.get_by_role("button", name="Cancel run").count() == 0


def test_a_hostile_name_is_shown_as_text(signed_in: Page, service: CdcService, pg_server: PgServer) -> None:
    page = signed_in
    body = connector_body(pg_server, "postgres", "postgres", HOSTILE)
    connector_id = service.session().post(f"{service.api}/connectors", json=body, timeout=30).json()["connector"]["id"]
    for url in (f"{service.url}/console/", f"{service.url}/console/connectors/{connector_id}"):
        page.goto(url)
        page.get_by_text(HOSTILE).first.wait_for()
        assert page.locator("script:not([src])").count() == 0
    page.goto(f"{service.url}/console/?q={HOSTILE}")
    assert page.get_by_label("Find").input_value() == HOSTILE
    assert page.dialogs == []  # type: ignore[attr-defined]


@pytest.mark.airflow
def test_airflow_connector_run_link_opens_the_run_page(
    page: Page,
    service: CdcService,
    pg_server: PgServer,
    make_database: Callable[[str], str],
    airflow_env: Any,
    airflow_connection: Callable[..., str],
) -> None:
    """What an operator does: click "Connector run" on the task in Airflow, sign in, read the run."""
    from airflow.sdk import DAG

    from airflow_connectors.operators.connector import SyncConnectorOperator

    connector_id = shop_connector(service, pg_server, make_database)
    conn_id = airflow_connection("cdc_console_link", conn_type="cdc_core", host=service.url, password=service.token)
    with DAG(f"console_link_{uuid.uuid4().hex[:8]}", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        SyncConnectorOperator(task_id="sync", conn_id=conn_id, connector_id=connector_id, poll_interval=0.2)
    result = airflow_env.run_dag(dag)
    assert result.task_states == {"sync": "success"}, result.logs
    link = result.xcom("sync", "_link_ConnectorRunLink")
    connector_link = result.xcom("sync", "_link_ConnectorLink")
    assert link.startswith(f"{service.url}/console/connectors/{connector_id}/runs/")

    page.goto(link)
    assert "/console/sign-in" in page.url
    sign_in(page, service.token)
    page.wait_for_url(link)
    assert run_state(page) == "succeeded"
    assert table_rows(page) == SHOP_TABLES
    page.goto(connector_link)
    page.get_by_role("heading", name="Tables").wait_for()


def test_a_failed_run_shows_its_error_and_the_remedy_button_fixes_it(
    signed_in: Page, service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]
) -> None:
    page = signed_in
    sources: list[str] = []
    connector_id = shop_connector(service, pg_server, make_database, sources=sources)
    assert run_once(service, connector_id)["state"] == "succeeded"
    with psycopg.connect(sources[0], autocommit=True) as conn:  # someone drops the connector's slot
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()"
        )
    failed = run_once(service, connector_id)
    assert failed["state"] == "failed" and "does not exist" in failed["error"]

    page.goto(f"{service.url}/console/connectors/{connector_id}/runs/{failed['run_id']}")
    alert = page.get_by_role("alert")
    alert.get_by_text("does not exist (dropped by someone else?)").wait_for()
    assert "Remedy: Start a run with resync=true to take a new snapshot." in alert.inner_text()
    alert.get_by_role("button", name="Resync every table").click()
    page.wait_for_url(re.compile(r"/runs/[^/]+$"))
    assert run_id_of(page) != failed["run_id"]
    page.locator('#run-state [data-state="succeeded"]').wait_for(timeout=RUN_TIMEOUT_MS)
    assert wait_run(service, connector_id, run_id_of(page))["resync"] is True
    assert table_rows(page) == SHOP_TABLES
