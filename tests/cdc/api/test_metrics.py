"""``/metrics`` of the real service after real runs: Prometheus text format, token-protected unless opened."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PgServer
from tests.fixtures.cdc_service import CdcService
from tests.fixtures.console import SHOP_TABLES, run_once, shop_connector


@pytest.fixture(scope="module")
def service(start_cdc_service: Callable[..., CdcService]) -> CdcService:
    return start_cdc_service()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token(service: CdcService) -> None:
    response = requests.get(f"{service.url}/metrics", timeout=30)
    assert response.status_code == 401
    assert (
        requests.get(f"{service.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=30).status_code == 401
    )


@pytest.mark.slow
def test_metrics_after_runs(service: CdcService, pg_server: PgServer, make_database: Callable[[str], str]) -> None:
    connector_id = shop_connector(service, pg_server, make_database, name="metrics-shop")
    assert run_once(service, connector_id)["state"] == "succeeded"
    assert run_once(service, connector_id, resync=["public.customers"])["state"] == "succeeded"
    response = service.session().get(f"{service.url}/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)

    def value(metric: str, /, **labels: str) -> float:
        return values[(metric, frozenset(labels.items()))]

    assert value("cdc_runs", connector=connector_id, state="succeeded") == 2
    assert value("cdc_connector_info", connector=connector_id, name="metrics-shop", state="idle") == 1
    assert value("cdc_run_duration_seconds_count", connector=connector_id, state="succeeded") == 2
    assert value("cdc_run_duration_seconds_sum", connector=connector_id, state="succeeded") > 0
    assert value("cdc_run_duration_seconds_bucket", connector=connector_id, state="succeeded", le="+Inf") == 2
    # The first run copied every table, the resync copied customers again.
    assert (
        value("cdc_table_rows_applied_total", connector=connector_id, table="public.orders")
        == SHOP_TABLES["public.orders"]
    )
    assert value("cdc_table_rows_applied_total", connector=connector_id, table="public.customers") == 2 * 200
    assert value("cdc_table_bytes_applied_total", connector=connector_id, table="public.orders") > 0
    assert value("cdc_replication_lag_bytes", connector=connector_id) >= 0
    assert value("cdc_replication_slot_wal_status", connector=connector_id, wal_status="reserved") == 1
    assert value("cdc_replication_slot_wal_status", connector=connector_id, wal_status="lost") == 0
    assert value("cdc_worker_processes") == 2
    assert value("cdc_run_queue_length") == 0
    assert value("cdc_runs_executing") == 0


def test_a_setting_opens_metrics(start_cdc_service: Callable[..., CdcService]) -> None:
    service = start_cdc_service(workers=0, env={"CDC_METRICS_PUBLIC": "true"})
    try:
        response = requests.get(f"{service.url}/metrics", timeout=30)
        assert response.status_code == 200
        values = samples(response.text)
        assert values[("cdc_worker_processes", frozenset())] == 0
        # The API itself still needs the token.
        assert requests.get(f"{service.api}/connectors", timeout=30).status_code == 401
    finally:
        service.stop()
