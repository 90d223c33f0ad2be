"""The API process's concurrency budget, so load queues and then answers 503 / 429 instead of failing with 500.

- State-store connections: a request waits for one *asynchronously* (holding no thread) after its body is read, up
  to ``pool_wait_seconds``, then gets 503 with ``Retry-After``. Admitted requests never outnumber the pool, so a
  handler thread never blocks on the pool.
- Outbound calls (validations, a delete dropping the source's slot: connections to user-named hosts, up to their
  deadline) run without a state-store connection; beyond ``max_concurrent_validations`` at once, 429 with
  ``Retry-After``.
- Handler threads: as many as admitted requests plus outbound calls can use at once, plus a few for the rest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from airflow_connectors.cdc.api.errors import ApiProblem
from airflow_connectors.cdc.settings import ServiceSettings

SPARE_THREADS = 8  # /health, auth and other short dependencies that hold nothing


class Limits:
    def __init__(self, settings: ServiceSettings) -> None:
        self.connections = settings.pool_max_size
        self.outbound = settings.max_concurrent_validations
        self.wait_seconds = settings.pool_wait_seconds
        self._connection_slots = anyio.Semaphore(self.connections)
        self._outbound_running = 0

    def size_thread_pool(self) -> None:
        """Called in the event loop at startup (the limiter belongs to the loop)."""
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = self.connections + self.outbound + SPARE_THREADS

    @asynccontextmanager
    async def connection_slot(self) -> AsyncIterator[None]:
        try:
            with anyio.fail_after(self.wait_seconds):
                await self._connection_slots.acquire()
        except TimeoutError:
            raise ApiProblem(
                503,
                "service_busy",
                f"all {self.connections} state-store connections stayed busy for {self.wait_seconds:g} s; retry",
                headers={"Retry-After": "1"},
            ) from None
        try:
            yield
        finally:
            self._connection_slots.release()

    @asynccontextmanager
    async def outbound_slot(self) -> AsyncIterator[None]:
        if self._outbound_running >= self.outbound:  # the event loop is single-threaded: no race here
            raise ApiProblem(
                429,
                "too_many_outbound_connections",
                f"{self.outbound} calls are connecting to sources or sinks (validations, deletes); retry when one"
                " has finished",
                headers={"Retry-After": "5"},
            )
        self._outbound_running += 1
        try:
            yield
        finally:
            self._outbound_running -= 1
