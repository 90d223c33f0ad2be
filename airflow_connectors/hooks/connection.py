"""From an Airflow connection to what the HTTP layer needs: base URL, secrets, timeouts, retry policy.

Conventions for every connection type: ``host`` may be a full base URL (``scheme://host:port[/prefix]``) or a bare
host name (https is assumed; a generic ``http`` connection's ``schema`` field may say http); empty means the API's
public base URL. Extras ``connect_timeout`` and ``read_timeout`` (seconds), ``max_retries`` and
``retry_budget_seconds`` tune the HTTP layer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from airflow_connectors.hooks.retry_policy import RetryPolicy

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0


def base_url(host: str | None, port: int | None, default: str, scheme: str = "https") -> str:
    """The API's base URL, without a trailing slash (``scheme`` for a bare host name)."""
    if not host or not host.strip():
        if not default:
            raise ValueError("host: this connection type has no public default URL; give the service's base URL")
        return default.rstrip("/")
    text = host.strip()
    if "://" not in text:
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"host: {host!r} is not an http(s) URL or host name")
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _number(extra: dict[str, Any], key: str, default: float) -> float:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"extra.{key}: expected a number of seconds, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"extra.{key}: must be > 0")
    return number


def _retries(value: Any) -> int:
    """``max_retries``: a whole number >= 0 (0: one attempt, no retry)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not 0 <= number < 1000 or number != int(number):
        raise ValueError(f"extra.max_retries: expected a whole number >= 0 (0 turns retries off), got {value!r}")
    return int(number)


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_connection(cls, conn: Any, default_url: str) -> HttpSettings:
        # The UI may store form fields as ``extra__<type>__<name>``; accept both spellings (the type in any case:
        # fivetran-async's ``Fivetran`` is ``fivetran`` when the connection comes from a URI).
        prefix = f"extra__{conn.conn_type}__".lower()
        extra = {
            key[len(prefix) :] if key.lower().startswith(prefix) else key: value
            for key, value in (conn.extra_dejson or {}).items()
        }
        retry = RetryPolicy()
        if extra.get("max_retries") not in (None, ""):
            retry = replace(retry, max_attempts=_retries(extra["max_retries"]) + 1)
        if extra.get("retry_budget_seconds") not in (None, ""):
            retry = replace(retry, budget_seconds=_number(extra, "retry_budget_seconds", retry.budget_seconds))
        # A generic HTTP connection keeps its scheme in ``schema`` (as Airflow's HttpHook reads it).
        scheme = conn.schema if conn.conn_type in ("http", "https") and conn.schema in ("http", "https") else "https"
        return cls(
            base_url=base_url(conn.host, conn.port, default_url, scheme),
            connect_timeout=_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            read_timeout=_number(extra, "read_timeout", DEFAULT_READ_TIMEOUT),
            retry=retry,
        )
