"""A hostile "PostgreSQL server" on loopback, for the service's defences against the hosts users point it at.

Modes:
- ``stall``: accept TCP connections and never answer (a black-holing load balancer, a stopped process).
- ``capture``: speak the startup protocol, ask for the password in clear text and record it (a host an attacker
  controls, fishing for a stored password).
- ``stall_after_auth``: complete the handshake (AuthenticationOk, ReadyForQuery), then never answer a query.

Connections are held open until :meth:`stop`, so a client that waits on one waits for as long as the test says.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Literal

Mode = Literal["stall", "capture", "stall_after_auth"]
SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


class HostilePeer:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.passwords: list[str] = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"hostile-peer-{mode}", daemon=True)

    def start(self) -> HostilePeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.server.close()
        with self._lock:
            for conn in self._held:
                try:
                    conn.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._held.append(conn)
            if self.mode != "stall":
                threading.Thread(target=self._speak, args=(conn,), daemon=True).start()

    def _startup(self, conn: socket.socket) -> None:
        """Read the startup packet, refusing SSL and GSS encryption requests first (so the client goes on in clear)."""
        while True:
            (length,) = struct.unpack("!I", _recv_exact(conn, 4))
            body = _recv_exact(conn, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code in (SSL_REQUEST, GSS_REQUEST):
                conn.sendall(b"N")
                continue
            return

    def _speak(self, conn: socket.socket) -> None:
        try:
            self._startup(conn)
            if self.mode == "capture":
                conn.sendall(_message(b"R", struct.pack("!I", 3)))  # AuthenticationCleartextPassword
                kind = _recv_exact(conn, 1)
                (length,) = struct.unpack("!I", _recv_exact(conn, 4))
                payload = _recv_exact(conn, length - 4)
                if kind == b"p":
                    with self._lock:
                        self.passwords.append(payload.rstrip(b"\x00").decode(errors="replace"))
                conn.sendall(_message(b"E", b"SFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00"))
                return
            parameters = [
                ("server_version", "18.0"),
                ("server_encoding", "UTF8"),
                ("client_encoding", "UTF8"),
                ("DateStyle", "ISO, MDY"),
                ("integer_datetimes", "on"),
                ("standard_conforming_strings", "on"),
            ]
            reply = _message(b"R", struct.pack("!I", 0))
            for name, value in parameters:
                reply += _message(b"S", name.encode() + b"\x00" + value.encode() + b"\x00")
            reply += _message(b"K", struct.pack("!II", 4242, 4242)) + _message(b"Z", b"I")
            conn.sendall(reply)
            self._stopped.wait()  # read nothing more, answer nothing: the client's query waits on us
        except (OSError, ConnectionError, struct.error):
            return
