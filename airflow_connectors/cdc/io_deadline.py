"""Client-side deadlines for connections to servers the service does not control.

libpq bounds the handshake (``connect_timeout``), the server bounds statements only if it is alive and honest
(``statement_timeout``), and TCP keepalives only catch a peer that stops acknowledging. A peer that acknowledges and
never answers is bounded from our side alone: at the deadline the connection's socket is shut down, which wakes any
call blocked on it with an error (from any thread, whatever the call is).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

# TCP settings of every connection to a source or sink: a dead peer or a cut network is noticed in about 30 s.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: sent data unacknowledged this long breaks the connection
}


def connection_fd(conn: psycopg.Connection[Any]) -> int | None:
    try:
        return conn.pgconn.socket
    except psycopg.Error:  # already closed
        return None


def shutdown_fd(fd: int) -> None:
    """Break the socket behind ``fd`` under whoever is using it (the current or next read fails at once)."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:  # closed meanwhile, or not a socket
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # closes our duplicate only; the shutdown applies to the shared socket


def shutdown(conn: psycopg.Connection[Any]) -> None:
    fd = connection_fd(conn)
    if fd is not None:
        shutdown_fd(fd)


def socket_fds() -> set[int]:
    """The sockets this process has open (Linux ``/proc``; empty where it is unavailable)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return set()
    found = set()
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
        except OSError:  # closed while listing
            continue
    return found


class Expired:
    """Whether a :func:`deadline` fired (read after the block to tell a timeout from another failure)."""

    fired = False


@contextmanager
def deadline(conn: psycopg.Connection[Any], seconds: float) -> Iterator[Expired]:
    """Shut ``conn`` down if the block is still running after ``seconds``."""
    expired = Expired()

    def fire() -> None:
        expired.fired = True
        shutdown(conn)

    timer = threading.Timer(max(seconds, 0.0), fire)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
