"""The spool of transactions streamed while in progress, without a database: order, subtransaction aborts, blocks."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest

from airflow_connectors.cdc.engine import streamed_txn
from airflow_connectors.cdc.engine.interface import TransientEngineError
from airflow_connectors.cdc.engine.streamed_txn import StreamedTransactions


def insert(xid: int, payload: bytes) -> bytes:
    """A streamed Insert-like message: kind, the (sub)transaction's xid, then the protocol 1 body."""
    return b"I" + struct.pack("!I", xid) + payload


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamed_txn, "READ_BYTES", 7)  # every message spans read blocks
    monkeypatch.setattr(streamed_txn, "WRITE_BYTES", 50)  # written to the spool in several parts


def test_messages_come_back_in_order_in_protocol_1_form_without_rolled_back_subtransactions() -> None:
    spools = StreamedTransactions()
    spools.start(100, first_segment=True)
    sent = [insert(100 if i % 3 else 101, bytes([i]) * (i * 5 % 40)) for i in range(60)]
    sent.insert(10, b"R" + struct.pack("!I", 101) + b"relation of the subtransaction")
    for message in sent:
        spools.add(100, message)
    spools.abort(100, 101)  # ROLLBACK TO SAVEPOINT: its changes go, its Relation message stays
    kept = [message[:1] + message[5:] for message in sent if message[0:1] == b"R" or message[1:5] != b"\0\0\0e"]
    assert list(spools.commit(100)) == kept
    assert 100 not in spools and len(spools) == 0


def test_an_aborted_transaction_and_one_sent_again_leave_nothing_behind() -> None:
    spools = StreamedTransactions()
    spools.start(7, first_segment=True)
    spools.add(7, insert(7, b"first attempt"))
    spools.start(7, first_segment=True)  # re-sent from its beginning (a restart)
    spools.add(7, insert(7, b"second"))
    spools.start(8, first_segment=True)
    spools.add(8, insert(8, b"rolled back"))
    spools.abort(8, 8)
    assert 8 not in spools
    assert list(spools.commit(7)) == [b"Isecond"]
    assert list(spools.commit(8)) == []
    spools.close()


def test_a_spool_directory_that_cannot_be_written_is_a_transient_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "gone"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    with pytest.raises(TransientEngineError, match=f"{missing}.*TMPDIR"):
        StreamedTransactions().start(1, first_segment=True)
