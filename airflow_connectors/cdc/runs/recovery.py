"""Lease recovery: runs whose worker died (SIGKILL, OOM, lost machine) go back to the queue.

A dead worker stops renewing its lease; any worker then finds the expired lease and puts the run back in the queue
(or fails it after ``max_recoveries`` deaths). The engine resumes from the sink's checkpoint, so nothing is applied
twice.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.runs.state_machine import RunState, transition

logger = logging.getLogger(__name__)


def recover_expired_runs(conn: psycopg.Connection[Any], max_recoveries: int) -> list[str]:
    """Requeue (or cancel / fail) runs whose worker stopped heartbeating. Safe to call from every worker."""
    recovered = []
    with conn.transaction():
        for row in run_store.lock_expired_leases(conn):
            run_id, state = row["run_id"], RunState(row["state"])
            run_store.count_recovery(conn, run_id)
            if row["cancel_requested"]:
                transition(conn, run_id, RunState.CANCELLED)
            elif row["recoveries"] + 1 > max_recoveries:
                message = f"the worker executing this run died {row['recoveries'] + 1} times; giving up"
                transition(conn, run_id, RunState.FAILED, changes={"error": message})
            elif state is not RunState.QUEUED:
                transition(conn, run_id, RunState.QUEUED)
            logger.warning("run %s: worker lease expired in state %s; recovered", run_id, state.value)
            recovered.append(run_id)
    return recovered
