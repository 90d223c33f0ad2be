"""When to retry an API request and how long to wait: exponential backoff with jitter, ``Retry-After`` honoured,
bounded by a number of attempts and a total time budget. Pure functions: the HTTP layer does the waiting."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # including the first
    backoff_base: float = 0.5  # seconds before the first retry (before jitter)
    backoff_max: float = 30.0
    budget_seconds: float = 300.0  # no retry starts once this much time has passed since the first attempt
    max_retry_after: float = 600.0  # a server asking for longer than this is not waited for
    jitter: float = 0.5  # each backoff is scaled by a random factor in [1 - jitter, 1]
    retry_statuses: frozenset[int] = field(default=frozenset({408, 500, 502, 503, 504}))

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Wait before retry number ``attempt + 1`` (``attempt`` counts from 0) when the server gave no hint."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return ceiling * (1 - self.jitter * (rng or random).random())

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The server's ``Retry-After`` when it gave one (it knows best), else the backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return self.backoff(attempt)

    def allows(self, attempt: int, elapsed: float, delay: float) -> bool:
        """Whether retry number ``attempt + 1`` may start after waiting ``delay`` (``elapsed`` since the first try)."""
        return (
            attempt + 1 < self.max_attempts and delay <= self.max_retry_after and elapsed + delay <= self.budget_seconds
        )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
