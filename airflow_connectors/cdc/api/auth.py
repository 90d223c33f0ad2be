"""Bearer-token authentication of every endpoint except ``/health``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from airflow_connectors.cdc.api.errors import ApiProblem

_bearer = HTTPBearer(auto_error=False, description="The service token (CDC_API_TOKEN).")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    expected: str | None = request.app.state.api_token
    if expected is None:  # explicitly allowed: unauthenticated on loopback
        return
    given = credentials.credentials if credentials is not None else ""
    # Constant-time comparison: response timing must not reveal how much of a guess was right.
    if credentials is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiProblem(401, "unauthorized", "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
