"""The sink writer thread: jobs run in the order given, one at a time, the queue bounds how far the stream runs
ahead, and a failing job stops the writer and surfaces in the stream's thread."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from airflow_connectors.cdc.engine.sink_writer import SinkWriter


def test_jobs_run_in_order_on_one_other_thread() -> None:
    writer = SinkWriter()
    seen: list[tuple[int, int]] = []

    def record(number: int) -> None:
        seen.append((number, threading.get_ident()))

    try:
        for number in range(200):
            writer.submit(partial(record, number))

        def count() -> int:
            return len(seen)

        assert writer.future(count).result(timeout=10) == 200  # a read waits for every job before it
        writer.drain()
    finally:
        writer.close()
    assert [number for number, _ in seen] == list(range(200))
    assert {thread for _, thread in seen} != {threading.get_ident()} and len({thread for _, thread in seen}) == 1


def test_the_queue_is_bounded() -> None:
    writer = SinkWriter(depth=2)
    release = threading.Event()
    submitted: list[int] = []

    def producer() -> None:
        writer.submit(release.wait)  # the writer is busy with this one
        for number in range(5):
            writer.submit(lambda: None)
            submitted.append(number)

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and len(submitted) <= 2  # the producer waits: at most `depth` jobs queued
    release.set()
    thread.join(timeout=10)
    assert submitted == list(range(5))
    writer.close()


def test_a_full_batch_waits_for_the_one_being_written_and_small_ones_do_not() -> None:
    """Two batches in memory at most (the one written, the one built), however deep the queue."""
    writer = SinkWriter(depth=5, max_rows=100)
    release = threading.Event()
    handed: list[str] = []

    def producer() -> None:
        writer.submit(release.wait, rows=100)  # a full batch, being written
        writer.submit(lambda: None)  # a commit: carries no changes, never waits for rows
        handed.append("commit")
        writer.submit(lambda: None, rows=100)  # the next full batch: waits for the first to be written
        handed.append("second batch")

    thread = threading.Thread(target=producer)
    thread.start()
    thread.join(timeout=0.5)
    assert thread.is_alive() and handed == ["commit"]
    release.set()
    thread.join(timeout=10)
    assert handed == ["commit", "second batch"]
    writer.drain()
    writer.close()


def test_a_failed_read_fails_its_future_and_the_writer() -> None:
    writer = SinkWriter()

    def read() -> int:
        raise LookupError("no such chunk")

    with pytest.raises(LookupError):
        writer.future(read).result(timeout=10)
    with pytest.raises(LookupError):
        writer.submit(lambda: None)
    writer.close()


def test_a_failed_job_drops_the_rest_and_raises_in_the_caller() -> None:
    writer = SinkWriter()
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("the sink refused")

    writer.submit(lambda: ran.append(1))
    writer.submit(fail)
    with pytest.raises(ValueError, match="the sink refused"):
        for _ in range(10):
            writer.submit(lambda: ran.append(2))
        writer.drain()
    with pytest.raises(ValueError):
        writer.check()
    writer.close()
    assert ran == [1]
