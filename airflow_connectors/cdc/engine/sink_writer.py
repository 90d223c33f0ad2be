"""The one thread that writes to the sink while a stream runs, so the sink applies batch N while N+1 is decoded.

The stream hands it jobs (write these batches, stage this chunk, commit with this checkpoint) through a bounded
queue and goes back to reading and decoding; the jobs run one after the other on the sink connection, in the order
they were given, so the sink sees exactly what a single thread would have done and a checkpoint still commits with
the changes before it. Two bounds keep memory bounded: the queue's, in jobs, and ``max_rows``, in buffered changes
handed over and not yet written (a full batch then waits for the previous one to be written, instead of queuing
behind it: two batches in memory, the one written and the one built, not three). When the sink falls behind, the
stream waits.

Nothing else may use the sink connection meanwhile, except after :meth:`drain` (the writer is then idle until the
next job). A job's exception stops the writer: every later job is dropped and the exception is raised again in the
stream's thread by the next :meth:`submit`, :meth:`drain` or :meth:`check` (and by the :meth:`future` it failed).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TypeVar

T = TypeVar("T")
Job = Callable[[], object]
WAIT_STEP = 0.5  # seconds
DEPTH = 1  # jobs waiting at most: with the one being written and the one being built, three buffers in memory


class SinkWriter:
    """``while_waiting`` is called about every :data:`WAIT_STEP` seconds while the caller waits for the writer (the
    stream answers the source with it: a source that hears nothing for wal_sender_timeout closes the stream)."""

    def __init__(
        self, depth: int = DEPTH, while_waiting: Callable[[], None] = lambda: None, max_rows: int | None = None
    ) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=depth)
        self.max_rows = max_rows
        self._rows = 0  # changes in jobs submitted and not done
        self._rows_done = threading.Condition()
        self.while_waiting = while_waiting
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="cdc-sink-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    job()
            except BaseException as exc:  # handed to the stream's thread, which decides what it means
                self.error = exc
            finally:
                self._jobs.task_done()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, job: Job, rows: int = 0) -> None:
        """Queue ``job`` after the ones before it (waits while the queue is full); ``rows``: the buffered changes it
        writes (waits while they would exceed ``max_rows`` on top of those not written yet)."""
        self.check()
        if rows:
            self._reserve(rows)
            job = partial(self._counted, job, rows)
        while True:
            try:
                self._jobs.put(job, timeout=WAIT_STEP)
                return
            except queue.Full:
                self.while_waiting()
                self.check()

    def _reserve(self, rows: int) -> None:
        while True:
            with self._rows_done:
                if not self._rows or self.max_rows is None or self._rows + rows <= self.max_rows:
                    self._rows += rows
                    return
                self._rows_done.wait(WAIT_STEP)
            self.while_waiting()
            self.check()

    def _counted(self, job: Job, rows: int) -> None:
        try:
            job()
        finally:
            with self._rows_done:
                self._rows -= rows
                self._rows_done.notify_all()

    def future(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job`` (a read from the sink) and return its future result: it waits only for the jobs before it,
        so the caller can ask for the next read while it works on the previous one."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(job())
            except BaseException as exc:
                future.set_exception(exc)
                raise

        self.submit(run)
        return future

    def result(self, future: Future[T]) -> T:
        """Wait for ``future`` (from :meth:`future`) and return its result."""
        while True:
            try:
                return future.result(timeout=WAIT_STEP)
            except TimeoutError:
                self.while_waiting()

    def drain(self) -> None:
        """Wait until every job given so far is done; the caller may then use the sink connection itself."""
        done = self._jobs.all_tasks_done
        while True:
            with done:
                if not self._jobs.unfinished_tasks:
                    break
                done.wait(WAIT_STEP)
            self.while_waiting()
        self.check()

    def close(self) -> None:
        """Stop the thread once the queued jobs are done (or dropped, after an error)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
