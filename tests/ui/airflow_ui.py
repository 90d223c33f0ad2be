"""Open the real Airflow UI on this project's DAGs and screenshot the DAG list and the ``cdc_resync`` trigger form.

Run it as a script (``python -m tests.ui.airflow_ui docs/ui``) or through ``tests/ui/test_airflow_ui.py``. It starts
``airflow standalone`` with a throwaway AIRFLOW_HOME, this repository's ``dags/`` and the simple auth manager in
all-admins mode (no login on a loopback demo), then drives headless Chromium with Playwright.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from airflow_connectors.cdc.embedded_pg import free_port
from tests.ui.browser import launch

ROOT = Path(__file__).resolve().parents[2]


def start_airflow(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        # standalone starts its components as `airflow ...` commands: the virtual environment's must be found first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (home / "standalone.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"], env=env, stdout=log, stderr=log, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=10).status_code == 200:
                return process, url
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            pass
        if process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited; see {home / 'standalone.log'}")
        time.sleep(1)
    os.killpg(process.pid, 15)  # never leave its scheduler, triggerer and API server behind
    process.wait(60)
    raise RuntimeError("airflow standalone did not come up in 240 s")


def screenshot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airflow-ui-") as tmp:
        process, url = start_airflow(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                deadline = time.monotonic() + 180
                while True:  # the dag processor parses the folder a little after start
                    page.goto(f"{url}/dags", wait_until="networkidle")
                    if page.get_by_text("cdc_resync").count() or time.monotonic() > deadline:
                        break
                    time.sleep(3)
                page.get_by_text("cdc_postgres_sync").first.wait_for(timeout=30_000)
                dag_list = out / "dag_list.png"
                page.screenshot(path=str(dag_list), full_page=True)
                page.goto(f"{url}/dags/cdc_resync", wait_until="networkidle")
                page.get_by_role("button", name="Trigger").first.click()
                page.get_by_text("Tables (schema.table)").first.wait_for(timeout=30_000)
                form = out / "cdc_resync_trigger_form.png"
                page.screenshot(path=str(form), full_page=True)
                browser.close()
        finally:
            os.killpg(process.pid, 15)
            process.wait(60)
    return [dag_list, form]


if __name__ == "__main__":
    for path in screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "ui")):
        print(path)
