"""A wrong ``CDC_SECRET_KEY``: the service refuses to start (naming key rotation) instead of writing secrets with a
second key, and a run that meets a secret it cannot decrypt fails with that message instead of killing its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from airflow_connectors.cdc.connectors.secrets import SecretBox
from airflow_connectors.cdc.embedded_pg import free_port
from tests.cdc.api.test_connectors_api import create
from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.secret_scan import register_secret

pytestmark = pytest.mark.slow  # each test starts two service processes


def _new_key() -> str:
    key = SecretBox.generate_key()
    register_secret(key)
    return key


def test_a_wrong_key_refuses_to_start_and_rotation_works(start_cdc_service: Callable[..., CdcService]) -> None:
    first = start_cdc_service(workers=0)
    connector_id = create(first, first.session())["connector"]["id"]
    first.stop()
    new_key = _new_key()
    port = free_port()
    env = {**os.environ, "CDC_STATE_DSN": first.state_dsn, "CDC_API_TOKEN": first.token, "CDC_SECRET_KEY": new_key}
    command = [sys.executable, "-m", "airflow_connectors.cdc.cli", "serve", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break  # serving: the wrong key was accepted
            except requests.ConnectionError:
                time.sleep(0.2)
        assert process.poll() is not None, "the service started with a key that cannot decrypt the stored secrets"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # with its run worker
        out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "CDC_SECRET_KEY" in err and "new,old" in err
    assert new_key not in out + err and first.secret_key not in out + err
    rotated = start_cdc_service(
        first.state_dsn, workers=0, token=first.token, secret_key=f"{new_key},{first.secret_key}"
    )
    http = rotated.session()
    assert http.get(f"{rotated.api}/connectors/{connector_id}", timeout=30).status_code == 200
    assert create(rotated, http)["connector"]["id"]
    rotated.stop()


def test_a_run_meeting_an_undecryptable_secret_fails_cleanly(
    start_cdc_service: Callable[..., CdcService], pg_server: PgServer
) -> None:
    state_dsn = pg_server.create_database(f"cdc_state_mixed_keys_{uuid.uuid4().hex[:8]}")
    writer = start_cdc_service(state_dsn, workers=0, secret_key=_new_key())  # both start on an empty store
    runner = start_cdc_service(state_dsn, workers=1, secret_key=_new_key(), env={"CDC_LEASE_SECONDS": "2"})
    connector_id = create(writer, writer.session())["connector"]["id"]
    response = writer.session().post(f"{writer.api}/connectors/{connector_id}/runs", json={}, timeout=30)
    assert response.status_code == 202, response.text
    run_url = f"{writer.api}/connectors/{connector_id}/runs/{response.json()['run_id']}"
    deadline = time.monotonic() + 60
    while (run := writer.session().get(run_url, timeout=30).json())["state"] not in (
        "failed",
        "succeeded",
        "cancelled",
    ):
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["state"] == "failed" and "new,old" in run["error"], run
    assert "died" not in run["error"] and "exited with" not in runner.log()
    read = runner.session().get(f"{runner.api}/connectors/{connector_id}", timeout=30)
    assert read.status_code == 500 and read.json()["error"]["code"] == "secret_key_mismatch"
    assert "new,old" in read.json()["error"]["message"]
    writer.stop()
    runner.stop()
