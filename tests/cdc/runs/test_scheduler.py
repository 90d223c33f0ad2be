"""Scheduled runs: the due-time rules, and a real service starting runs on schedule but never for a disabled or
paused connector."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from airflow_connectors.cdc.connectors.models import Schedule
from airflow_connectors.cdc.runs.scheduler import next_due
from tests.cdc.runs.client import RunsClient, wait_for

CREATED = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_interval_schedule() -> None:
    every_10_min = Schedule(interval_seconds=600)
    assert next_due(every_10_min, None, CREATED) == CREATED  # never ran: due at once
    assert next_due(every_10_min, datetime(2026, 11, 24, 9, 0, tzinfo=UTC), CREATED) == datetime(
        2026, 11, 24, 9, 10, tzinfo=UTC
    )
    assert next_due(None, None, CREATED) is None


def test_cron_schedule_in_its_timezone() -> None:
    paris_6am = Schedule(cron="0 6 * * *", timezone="Europe/Paris")
    assert next_due(paris_6am, None, CREATED) == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 06:00 CET = 05:00 UTC


def test_the_service_starts_scheduled_runs_but_not_for_disabled_or_paused_connectors(runs_api: RunsClient) -> None:
    schedule = {"interval_seconds": 3600}
    disabled = runs_api.create_connector("ok", schedule=schedule, disabled=True)
    paused = runs_api.create_connector("ok", schedule=schedule)
    runs_api.http.post(f"{runs_api.api}/connectors/{paused}/commands", json={"command": "pause"}, timeout=30)
    active = runs_api.create_connector("ok", schedule=schedule)

    def runs(connector_id: str) -> list[dict]:
        return list(runs_api.http.get(f"{runs_api.api}/connectors/{connector_id}/runs", timeout=30).json()["items"])

    scheduled = wait_for(lambda: runs(active), lambda items: len(items) == 1, 30, "a scheduled run")
    assert scheduled[0]["trigger"] == "schedule"
    assert runs_api.wait_run(active, scheduled[0]["run_id"])["state"] == "succeeded"
    # The scheduler handles connectors in creation order in one pass: the other two were passed over.
    assert runs(disabled) == [] and runs(paused) == []
    response = runs_api.start_run(disabled)
    assert response.status_code == 409 and json.loads(response.text)["error"]["code"] == "connector_inactive"
