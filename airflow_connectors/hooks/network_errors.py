"""Why a request got no HTTP response, said so a user can act on it: which host, and refused, timeout, TLS or DNS.

``requests`` (through urllib3) and ``httpx`` (through httpcore) wrap the socket's error in two or three layers of
their own; the cause is found by walking ``__cause__`` / ``__context__`` / ``reason`` down to the OS or TLS error.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import requests

CONNECT_TIMEOUTS = (requests.ConnectTimeout, httpx.ConnectTimeout)
READ_TIMEOUTS = (requests.ReadTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)
DNS_WORDS = ("name or service not known", "nodename nor servname", "name resolution", "getaddrinfo failed")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        pending.extend([current.__cause__, current.__context__, reason if isinstance(reason, BaseException) else None])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))


def where(base_url: str) -> str:
    """``host:port`` of a base URL (the scheme's default port when none is written)."""
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def cause(exc: BaseException, connect_timeout: float, read_timeout: float) -> str:
    """The cause in a few words, with the setting to change where one helps."""
    chain = list(_chain(exc))
    text = " ".join(str(e) for e in chain).lower()
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None or isinstance(exc, requests.exceptions.SSLError):
        detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or (str(tls or exc))
        return f"TLS handshake failed ({detail}); is the scheme right (https vs http), is the certificate trusted?"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(word in text for word in DNS_WORDS):
        return "DNS lookup failed: no such host name (or no DNS server answered)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return "connection refused: nothing listens on that port"
    if isinstance(exc, CONNECT_TIMEOUTS):
        return f"timed out connecting after {connect_timeout:g}s (extra connect_timeout): host down or firewalled?"
    if isinstance(exc, READ_TIMEOUTS) or any(isinstance(e, TimeoutError) for e in chain):
        return f"connected, but no response within {read_timeout:g}s (extra read_timeout)"
    dropped = (ConnectionResetError, http.client.RemoteDisconnected, httpx.RemoteProtocolError)
    if any(isinstance(e, dropped) for e in chain):
        return "the connection was closed before a response came"
    errno_error = next((e for e in chain if isinstance(e, OSError) and e.strerror), None)
    if errno_error is not None:
        return str(errno_error.strerror).lower()
    return f"{type(exc).__name__}: {exc}"


def describe(exc: BaseException, base_url: str, connect_timeout: float, read_timeout: float) -> str:
    return f"no response from {where(base_url)}: {cause(exc, connect_timeout, read_timeout)}"
