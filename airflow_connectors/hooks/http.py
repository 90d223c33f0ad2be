"""The one HTTP layer of every connector hook: sessions, timeouts, retries, ``Retry-After``, error mapping, masking.

Sync requests use ``requests`` (one session per hook); triggers use the async twin over ``httpx``, which looks the
connection up with ``BaseHook.aget_connection`` and waits with ``asyncio.sleep``, so it never blocks the
triggerer's event loop. Nothing here talks to the network before the first call (DAG files stay parse-safe).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import httpx
import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException
from airflow.sdk.log import mask_secret

from airflow_connectors.hooks.base import ConnectorHook
from airflow_connectors.hooks.connection import HttpSettings
from airflow_connectors.hooks.network_errors import describe
from airflow_connectors.hooks.retry_policy import IDEMPOTENT_METHODS, RetryPolicy, parse_retry_after

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "x-correlation-id")


class ApiError(AirflowException):
    """An API refused or failed a request. Carries what the API said, never credentials."""

    def __init__(
        self,
        status: int | None,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status, self.code, self.api_message, self.request_id = status, code, message, request_id
        self.method, self.path, self.retry_after = method, path, retry_after
        where = f"{method} {path}".strip()
        head = f"{where} -> {status}" if status is not None else where
        text = f"{head}{f' {code}' if code else ''}: {message}"
        super().__init__(f"{text} (request id {request_id})" if request_id else text)


class ApiAuthError(ApiError):
    """401 / 403: wrong or missing credentials, or not allowed."""


class ApiNotFound(ApiError):
    """404."""


class ApiConflict(ApiError):
    """409: e.g. a sync is already running."""


class ApiValidationError(ApiError):
    """400 / 422: the API rejected the request's content."""


class ApiRateLimited(ApiError):
    """429 still returned when the retry budget ran out."""


class ApiUnavailable(ApiError):
    """Network errors, timeouts or 5xx still failing when the retry budget ran out."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiValidationError,
    401: ApiAuthError,
    403: ApiAuthError,
    404: ApiNotFound,
    409: ApiConflict,
    422: ApiValidationError,
    429: ApiRateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ApiUnavailable
    return _BY_STATUS.get(status, ApiError)


def error_details(payload: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from the error bodies of the four APIs (``{"error": {...}}``, ``{code, message}``,
    Polytomic's ``{key, message}``)."""
    if not isinstance(payload, Mapping):
        return None, None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        payload = inner
    elif isinstance(inner, str):
        return None, inner
    code = payload.get("code", payload.get("key"))
    message = payload.get("message", payload.get("detail"))
    return (str(code) if code is not None else None), (str(message) if message is not None else None)


def _request_id(headers: Mapping[str, str], payload: Any) -> str | None:
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in REQUEST_ID_HEADERS:
        if lowered.get(name):
            return lowered[name]
    if isinstance(payload, Mapping) and payload.get("requestId"):
        return str(payload["requestId"])
    return None


def _json(text: str, content_type: str) -> Any:
    if not text:
        return None
    if "json" not in content_type:
        return text
    try:
        import json

        return json.loads(text)
    except ValueError:
        return text


def _api_error(method: str, path: str, status: int, headers: Mapping[str, str], text: str, ctype: str) -> ApiError:
    payload = _json(text, ctype)
    code, message = error_details(payload)
    if message is None:
        message = text.strip()[:300] if isinstance(payload, str) and payload.strip() else "no error message"
    return error_class(status)(
        status,
        message,
        code=code,
        request_id=_request_id(headers, payload),
        method=method,
        path=path,
        retry_after=parse_retry_after(headers.get("Retry-After") or headers.get("retry-after")),
    )


def _is_retryable(
    method: str, status: int | None, policy: RetryPolicy, exc: Exception | None, idempotent: bool
) -> bool:
    if status == 429:
        return True  # the server did not process it
    if exc is not None:
        # A request that may have reached the server is only repeated when repeating it is harmless.
        connect_failure = isinstance(exc, (requests.ConnectTimeout, httpx.ConnectError, httpx.ConnectTimeout))
        return connect_failure or idempotent or method in IDEMPOTENT_METHODS
    return status in policy.retry_statuses and (idempotent or method in IDEMPOTENT_METHODS or status == 503)


@dataclass
class _Attempts:
    """One request's retry bookkeeping, shared by the sync client and its async twin."""

    policy: RetryPolicy
    method: str
    path: str
    idempotent: bool
    started: float = field(default_factory=time.monotonic)
    attempt: int = 0

    def network_error(self, exc: Exception, settings: HttpSettings) -> tuple[ApiError, bool]:
        message = describe(exc, settings.base_url, settings.connect_timeout, settings.read_timeout)
        error = ApiUnavailable(None, message, method=self.method, path=self.path)
        return error, _is_retryable(self.method, None, self.policy, exc, self.idempotent)

    def http_error(self, status: int, headers: Mapping[str, str], text: str) -> tuple[ApiError, bool]:
        error = _api_error(self.method, self.path, status, headers, text, headers.get("content-type", ""))
        return error, _is_retryable(self.method, status, self.policy, None, self.idempotent)

    def wait_before_retry(self, error: ApiError, retryable: bool, log: Any) -> float:
        """Seconds to wait before the next attempt; raises ``error`` when the policy allows none."""
        delay = self.policy.delay(self.attempt, error.retry_after)
        if not retryable or not self.policy.allows(self.attempt, time.monotonic() - self.started, delay):
            raise error
        self.attempt += 1
        log.warning(
            "%s; retrying in %.1fs (attempt %d of %d)", error, delay, self.attempt + 1, self.policy.max_attempts
        )
        return delay


class HttpApiHook(ConnectorHook):
    """Base of the four hooks. A subclass names its connection type and public URL, and says how to authenticate
    (:meth:`auth_headers`) and where the payload sits in a response (:meth:`unwrap`)."""

    default_url: ClassVar[str] = ""
    base_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    transient_errors: ClassVar[tuple[type[Exception], ...]] = (ApiUnavailable, ApiRateLimited)

    def __init__(self, conn_id: str | None = None, *, retry: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(conn_id, **kwargs)
        self._retry_override = retry

    # -- what subclasses define --------------------------------------------------------------------------------
    def auth_headers(self, conn: Any) -> dict[str, str]:
        """Bearer token in the connection's password (override for other schemes)."""
        if not conn.password:
            raise ValueError(f"connection {self.conn_id!r}: the token (password field) is empty")
        return {"Authorization": f"Bearer {conn.password}"}

    def extra_headers(self, conn: Any) -> dict[str, str]:
        return {}

    def secrets(self, conn: Any) -> list[str]:
        return [value for value in (conn.password,) if value]

    def unwrap(self, payload: Any) -> Any:
        """The useful part of a successful response (e.g. Fivetran's ``data``)."""
        return payload

    @staticmethod
    def basic_auth(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    # -- connection ----------------------------------------------------------------------------------------------
    def _prepare(self, conn: Any) -> tuple[HttpSettings, dict[str, str]]:
        for secret in self.secrets(conn):
            mask_secret(secret)
        settings = HttpSettings.from_connection(conn, self.default_url)
        if self._retry_override is not None:
            settings = HttpSettings(
                settings.base_url, settings.connect_timeout, settings.read_timeout, self._retry_override
            )
        headers = {**self.base_headers, **self.extra_headers(conn), **self.auth_headers(conn)}
        return settings, headers

    @cached_property
    def _sync(self) -> tuple[HttpSettings, requests.Session]:
        settings, headers = self._prepare(self.get_connection(self.conn_id))
        session = requests.Session()
        session.headers.update(headers)
        return settings, session

    async def _async(self) -> tuple[HttpSettings, dict[str, str], ssl.SSLContext]:
        cached = getattr(self, "_async_cache", None)
        if cached is None:
            settings, headers = self._prepare(await BaseHook.aget_connection(self.conn_id))
            # httpx builds a TLS context, loading the CA bundle, for every client it makes unless given one: 50-100 ms
            # of CPU on the triggerer's event loop per poll. Built once per hook, in a thread, it never blocks the loop.
            context = await asyncio.to_thread(httpx.create_ssl_context)
            cached = self._async_cache = (settings, headers, context)
        return cached

    @property
    def base_url(self) -> str:
        return self._sync[0].base_url

    # -- requests --------------------------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """One API call with the retry policy; returns the unwrapped JSON payload (None for an empty body)."""
        settings, session = self._sync
        attempts = _Attempts(settings.retry, method, path, idempotent)
        while True:
            try:
                response = session.request(
                    method,
                    settings.base_url + path,
                    json=json,
                    params=params,
                    headers=dict(headers or {}),
                    timeout=(settings.connect_timeout, settings.read_timeout),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                error, retryable = attempts.network_error(exc, settings)
            else:
                if response.status_code < 400:
                    return self.unwrap(_json(response.text, response.headers.get("content-type", "")))
                error, retryable = attempts.http_error(response.status_code, response.headers, response.text)
            time.sleep(attempts.wait_before_retry(error, retryable, self.log))

    async def _acall(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Any:
        """The async twin of :meth:`_call` (same policy, ``asyncio.sleep`` between attempts)."""
        settings, base, context = await self._async()
        attempts = _Attempts(settings.retry, method, path, idempotent)
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        async with httpx.AsyncClient(headers=base, timeout=timeout, verify=context) as client:
            while True:
                try:
                    response = await client.request(
                        method, settings.base_url + path, json=json, params=params, headers=dict(headers or {})
                    )
                except httpx.TransportError as exc:
                    error, retryable = attempts.network_error(exc, settings)
                else:
                    if response.status_code < 400:
                        return self.unwrap(_json(response.text, response.headers.get("content-type", "")))
                    error, retryable = attempts.http_error(response.status_code, response.headers, response.text)
                await asyncio.sleep(attempts.wait_before_retry(error, retryable, self.log))
