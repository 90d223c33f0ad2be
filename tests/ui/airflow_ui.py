"""Open the real Airflow UI on this project's DAGs and screenshot the DAG list and the ``cdc_resync`` trigger form.

Run it as a script (``python -m tests.ui.airflow_ui docs/ui``) or through ``tests/ui/test_airflow_ui.py``. In a
throwaway AIRFLOW_HOME it migrates the metadata database, writes ``dags/`` into it as the DAG processor does
(``airflow dags reserialize``: the same parsing and serialization), and starts the API server, which serves the UI,
with the simple auth manager in all-admins mode (no login on a loopback demo); then it drives headless Chromium with
Playwright. ``airflow standalone`` (the README's command) also runs a scheduler, a triggerer and a DAG processor,
which no page here needs: on a loaded machine they made this check take 130-170 s instead of about 70 s.
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


def airflow_env(home: Path, port: int) -> dict[str, str]:
    """Everything Airflow reads from its home points into ``home`` (a test session's own home is in the inherited
    environment and must not be shared with these processes)."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__WORKERS": "1",
    }


def stop(process: subprocess.Popen[bytes]) -> None:
    """Never leave the API server (or the processes it forked) behind."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
    process.wait(60)


def start_airflow(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = airflow_env(home, port)
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *command], env=env, capture_output=True, text=True, timeout=240
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    log = (home / "api-server.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server"], env=env, stdout=log, stderr=log, start_new_session=True
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
            raise RuntimeError(f"the Airflow API server exited; see {home / 'api-server.log'}")
        time.sleep(0.5)
    stop(process)
    raise RuntimeError("the Airflow API server did not come up in 240 s")


def screenshot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airflow-ui-") as tmp:
        process, url = start_airflow(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{url}/dags", wait_until="networkidle")
                for dag_id in ("cdc_resync", "cdc_postgres_sync"):  # the list renders after its API call returns
                    page.get_by_text(dag_id).first.wait_for(timeout=60_000)
                dag_list = out / "dag_list.png"
                page.screenshot(path=str(dag_list), full_page=True)
                page.goto(f"{url}/dags/cdc_resync", wait_until="networkidle")
                page.get_by_role("button", name="Trigger").first.click()
                page.get_by_text("Tables (schema.table)").first.wait_for(timeout=30_000)
                form = out / "cdc_resync_trigger_form.png"
                page.screenshot(path=str(form), full_page=True)
                browser.close()
        finally:
            stop(process)
    return [dag_list, form]


if __name__ == "__main__":
    for path in screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "ui")):
        print(path)
