"""Base of the fake SaaS servers: a real HTTP server on loopback, with routing, recorded requests and faults.

A fake subclasses :class:`FakeApi` and registers handlers with :func:`route`; a handler gets a :class:`Request`
and returns ``(status, json_body)`` or ``(status, json_body, headers)``. Tests can then ``inject`` faults that the
next matching requests get instead of the handler's answer: 429 with ``Retry-After``, a 5xx, a slow answer, or a
dropped connection. Every request is recorded (with its arrival time) so tests assert on what was sent and when,
instead of sleeping.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

Response = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[[Any, "Request"], Response]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, raw text, or None
    received_at: float  # time.monotonic()
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Fault:
    """What the next matching request gets instead of the handler's answer."""

    kind: str  # "status" | "slow" | "drop"
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    body: Any = None


def rate_limited(retry_after: float | str = 1, body: Any = None) -> Fault:
    return Fault("status", status=429, retry_after=str(retry_after), body=body)


def server_error(status: int = 503, body: Any = None) -> Fault:
    return Fault("status", status=status, body=body)


def slow(delay: float) -> Fault:
    return Fault("slow", delay=delay)


def dropped() -> Fault:
    return Fault("drop")


class HttpError(Exception):
    """Raised by a handler: the request gets ``status`` and the fake's error body with this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and a path regex (named groups become ``request.params``)."""

    def register(handler: Handler) -> Handler:
        handler._route = (method.upper(), re.compile(f"^{pattern}$"))  # type: ignore[attr-defined]
        return handler

    return register


class FakeApi:
    """A fake API server; subclasses add state and routes."""

    name: ClassVar[str] = "fake"
    error_body: ClassVar[Callable[[int, str], Any]] = staticmethod(
        lambda status, message: {"error": {"code": str(status), "message": message}}
    )

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: list[str] = []  # handler exceptions, e.g. a response violating the API's schema
        self._faults: list[tuple[re.Pattern[str] | None, Fault]] = []
        self._lock = threading.RLock()
        self._routes = [
            (member._route, getattr(self, name))
            for cls in type(self).__mro__
            for name, member in vars(cls).items()
            if hasattr(member, "_route")
        ]
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FakeApi:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name=f"{self.name}-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test controls -----------------------------------------------------------------------------------------
    def inject(self, fault: Fault, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests whose path matches ``path`` (a regex; any when None) get ``fault``."""
        with self._lock:
            self._faults.extend([(re.compile(path) if path else None, fault)] * times)

    def requests_to(self, method: str, path_regex: str) -> list[Request]:
        pattern = re.compile(f"^{path_regex}$")
        return [r for r in self.requests if r.method == method.upper() and pattern.match(r.path)]

    def authorize(self, request: Request) -> bool:
        """Override: whether the request's credentials are good (401 otherwise)."""
        return True

    # -- dispatch ----------------------------------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, (pattern, fault) in enumerate(self._faults):
                if pattern is None or pattern.search(path):
                    del self._faults[index]
                    return fault
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={key.lower(): value for key, value in handler.headers.items()},
            body=body,
            received_at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(parts.path)
        if fault is not None and fault.kind == "drop":
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        elif fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body_out = fault.body if fault.body is not None else self.error_body(fault.status, "injected fault")
            self._send(handler, fault.status, body_out, headers)
            return
        self._send(handler, *self._answer(request))

    def _answer(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        matched_path = False
        for (method, pattern), function in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            matched_path = True
            if method != request.method:
                continue
            if not self.authorize(request):
                return 401, self.error_body(401, "invalid credentials"), {}
            routed = Request(**{**request.__dict__, "params": match.groupdict()})
            try:
                with self._lock:  # handlers mutate the fake's state
                    result = function(routed)
            except HttpError as exc:  # the API refusing the request
                return exc.status, self.error_body(exc.status, str(exc)), {}
            except Exception as exc:  # a bug in the fake (or a contract violation it detected): say so
                self.failures.append(f"{request.method} {request.path}: {exc}")
                return 500, self.error_body(500, f"fake {self.name} failed: {exc}"), {}
            return (result[0], result[1], result[2] if len(result) == 3 else {})  # type: ignore[misc]
        if matched_path:
            return 405, self.error_body(405, "method not allowed"), {}
        return 404, self.error_body(404, f"no route {request.path}"), {}

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Request-Id", f"req-{time.monotonic_ns()}")
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
