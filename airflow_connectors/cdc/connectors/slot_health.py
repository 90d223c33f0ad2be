"""Replication-slot health for the connector status, without letting a slow source slow the API down.

``engine.source_health`` connects to the source, which can take up to its connect timeout when the source is
down. Responses use a per-connector cached value; a stale one is refreshed in a background thread and the request
waits for it only briefly, then answers with what it has (the previous value, or None).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

logger = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cdc-slot-health")
_lock = threading.RLock()  # re-entrant: a done-callback may run at once, inside the lock
_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}  # connector id -> (monotonic time, status)
_pending: dict[str, Future[dict[str, Any] | None]] = {}


def _fetch(connector: Any) -> dict[str, Any] | None:
    try:
        from airflow_connectors.cdc.engine import source_health  # the engine is heavy; the API imports it lazily

        health = source_health(connector, timeout=10.0)
    except Exception as exc:  # an unreachable source is a status to show, not an API error
        logger.info("connector %s: slot health unavailable: %s", connector.id, type(exc).__name__)
        return None
    if not health.get("exists"):
        return None
    return {"name": health["slot_name"], "lag_bytes": health["lag_bytes"], "wal_status": health["wal_status"]}


def _store(connector_id: str, future: Future[dict[str, Any] | None]) -> None:
    with _lock:
        _pending.pop(connector_id, None)
        if future.exception() is None:
            _cache[connector_id] = (time.monotonic(), future.result())


def slot_status(connector: Any, *, max_age: float = 15.0, wait: float = 0.5) -> dict[str, Any] | None:
    """``{"name", "lag_bytes", "wal_status"}`` of the connector's slot, None if it has none (yet) or unknown."""
    key = str(connector.id)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        future = _pending.get(key)
        if future is None:
            future = _pending[key] = _executor.submit(_fetch, connector)
            future.add_done_callback(lambda done: _store(key, done))
    try:
        return future.result(timeout=wait)
    except FutureTimeout:
        return cached[1] if cached is not None else None


def forget(connector_id: str) -> None:
    """Drop the cached status (the connector was deleted or its source changed)."""
    with _lock:
        _cache.pop(connector_id, None)
