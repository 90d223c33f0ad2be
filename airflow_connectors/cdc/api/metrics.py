"""``GET /metrics``: Prometheus text format, computed from the state store at each scrape.

Runs are executed by worker processes of any number of service processes, so counters kept in one process's
memory would be partial; the store holds the truth, and every process answers a scrape with the same numbers
(except ``cdc_worker_processes``, which is per process). The endpoint needs the API token unless
``CDC_METRICS_PUBLIC=true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg import sql
from psycopg.rows import dict_row

from airflow_connectors.cdc.api.auth import require_token
from airflow_connectors.cdc.api.deps import connector_status
from airflow_connectors.cdc.connectors import slot_health
from airflow_connectors.cdc.connectors.store import ConnectorStore
from airflow_connectors.cdc.settings import ServiceSettings

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
WAL_STATUSES = ("reserved", "extended", "unreserved", "lost")
# The classic text format every Prometheus (2.x too) and agent reads; the names here need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _duration_query() -> sql.Composed:
    buckets = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE seconds <= {})").format(sql.Literal(bound)) for bound in DURATION_BUCKETS
    )
    return sql.SQL(
        "SELECT connector_id, state, count(*) AS n, sum(seconds) AS total, ARRAY[{}] AS buckets FROM ("
        " SELECT connector_id, state, extract(epoch FROM finished_at - started_at)::float8 AS seconds FROM runs"
        " WHERE finished_at IS NOT NULL AND started_at IS NOT NULL) finished GROUP BY connector_id, state"
    ).format(buckets)


class StoreCollector(Collector):
    """Reads the store at each scrape; ``workers`` gives this process's live run-worker count."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the store

    def collect(self) -> Iterator[Metric]:
        store: ConnectorStore = self.app.state.store
        info = GaugeMetricFamily(
            "cdc_connector_info", "Connectors (1 each), with name and state", labels=["connector", "name", "state"]
        )
        runs = GaugeMetricFamily(
            "cdc_runs", "Runs in the state store by connector and state", labels=["connector", "state"]
        )
        durations = HistogramMetricFamily(
            "cdc_run_duration_seconds", "Duration of finished runs (start to end)", labels=["connector", "state"]
        )
        rows = CounterMetricFamily(
            "cdc_table_rows_applied",
            "Rows applied to the sink per source table, all runs",
            labels=["connector", "table"],
        )
        volume = CounterMetricFamily(
            "cdc_table_bytes_applied",
            "Bytes applied to the sink per source table, all runs",
            labels=["connector", "table"],
        )
        lag = GaugeMetricFamily(
            "cdc_replication_lag_bytes", "Source WAL the connector's slot has not confirmed", labels=["connector"]
        )
        wal = GaugeMetricFamily(
            "cdc_replication_slot_wal_status",
            "1 for the slot's current pg_replication_slots.wal_status (lost: resync needed)",
            labels=["connector", "wal_status"],
        )
        with store.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cursor = None
            while True:
                records, cursor = store.list(conn, name=None, limit=200, cursor=cursor)
                for record in records:
                    connector_id = record.connector.id
                    status = connector_status(conn, record, live_slot=False)
                    info.add_metric([connector_id, record.connector.name or "", status.state], 1)
                    # The live value when the slot-health cache has one (refreshed in the background, never waited
                    # for here), else the last value a run reported.
                    live = slot_health.slot_status(record.connector, wait=0)
                    lag_bytes = live["lag_bytes"] if live else status.lag_bytes
                    wal_status = live["wal_status"] if live else status.wal_status
                    if lag_bytes is not None:
                        lag.add_metric([connector_id], lag_bytes)
                    if wal_status is not None:
                        for name in sorted({*WAL_STATUSES, wal_status}):
                            wal.add_metric([connector_id, name], 1.0 if name == wal_status else 0.0)
                if cursor is None:
                    break
            for row in cur.execute("SELECT connector_id, state, count(*) AS n FROM runs GROUP BY 1, 2 ORDER BY 1, 2"):
                runs.add_metric([row["connector_id"], row["state"]], row["n"])
            for row in cur.execute(_duration_query()):
                buckets = [(str(bound), count) for bound, count in zip(DURATION_BUCKETS, row["buckets"], strict=True)]
                durations.add_metric(
                    [row["connector_id"], row["state"]], [*buckets, ("+Inf", row["n"])], sum_value=row["total"] or 0.0
                )
            for row in cur.execute(
                "SELECT r.connector_id, t.key AS name, sum((t.value->>'rows')::bigint) AS rows,"
                " sum((t.value->>'bytes')::bigint) AS bytes FROM runs r, jsonb_each(r.tables) t"
                " GROUP BY 1, 2 ORDER BY 1, 2"
            ):
                rows.add_metric([row["connector_id"], row["name"]], float(row["rows"] or 0))
                volume.add_metric([row["connector_id"], row["name"]], float(row["bytes"] or 0))
            queue = cur.execute(
                "SELECT count(*) FILTER (WHERE state = 'queued' AND worker_id IS NULL) AS queued,"
                " count(*) FILTER (WHERE worker_id IS NOT NULL) AS leased FROM runs"
            ).fetchone()
        assert queue is not None
        yield from (info, runs, durations, rows, volume, lag, wal)
        yield GaugeMetricFamily("cdc_run_queue_length", "Queued runs no worker has claimed yet", value=queue["queued"])
        yield GaugeMetricFamily(
            "cdc_runs_executing", "Runs a worker holds a lease on (all service processes)", value=queue["leased"]
        )
        pool: Any = getattr(self.app.state, "workers", None)
        yield GaugeMetricFamily(
            "cdc_worker_processes", "Live run-worker processes of this service process", value=pool.alive if pool else 0
        )


def install_metrics(app: FastAPI, settings: ServiceSettings) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app))
    dependencies = [] if settings.metrics_public else [Depends(require_token)]

    @app.get("/metrics", dependencies=dependencies, response_class=Response, include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format (connectors, runs, durations, rows and bytes per table, slot lag and
        ``wal_status``, queue, workers). Needs the token unless ``CDC_METRICS_PUBLIC`` is set."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)
