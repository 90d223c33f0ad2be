"""The remedy the run page offers, from the engine's own error messages (no service needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow_connectors.cdc.api.console.views import remedy_for
from airflow_connectors.cdc.engine.slot import RESYNC_REMEDY
from airflow_connectors.cdc.runs.models import Run

TABLES = ["public.customers", "public.orders"]


def failed(error: str | None, wal_status: str | None = None) -> Run:
    return Run(
        run_id="r",
        connector_id="c",
        state="failed",
        mode="catch_up",
        resync=False,
        trigger="api",
        created_at=datetime.now(UTC),
        error=error,
        wal_status=wal_status,
    )


def test_a_lost_slot_is_resynced_whole() -> None:
    remedy = remedy_for(
        failed(f"replication slot s does not exist (dropped by someone else?); {RESYNC_REMEDY}"), TABLES
    )
    assert (
        remedy is not None
        and remedy.resync_all
        and remedy.advice == "Start a run with resync=true to take a new snapshot."
    )
    assert remedy_for(failed(None, wal_status="lost"), TABLES).resync_all  # type: ignore[union-attr]


def test_a_table_to_resync_is_named() -> None:
    remedy = remedy_for(failed("public.orders: key column 'id' was dropped on the source; resync the table"), TABLES)
    assert remedy is not None and remedy.resync_tables == ["public.orders"] and not remedy.resync_all


def test_no_button_where_a_resync_alone_does_not_fix_it() -> None:
    error = (
        "public.customers: column 'name' changed type from text to character varying(80) on the source and "
        "migration_strategy.retyped_columns is 'fail'; set it to 'apply', or alter the sink column yourself "
        "and resync the table"
    )
    remedy = remedy_for(failed(error), TABLES)
    assert remedy is not None and remedy.advice.startswith("Set it to 'apply'")
    assert remedy.resync_tables == [] and not remedy.resync_all
    assert remedy_for(failed("something odd"), TABLES).resync_tables == []  # type: ignore[union-attr]
