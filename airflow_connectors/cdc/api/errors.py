"""One error shape for every response: ``{"error": {"code", "message", "field"?, ...}}``.

Messages never echo request values (pydantic's ``input`` is dropped), so a secret in a bad body cannot come back
in an error or land in a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_connectors.cdc.connectors.secrets import SecretKeyError


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    run_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed JSON"),
        (401, "Missing or wrong bearer token"),
        (404, "Unknown id"),
        (409, "Conflict (e.g. an active run; carries its run_id)"),
        (413, "Request body over the limit"),
        (415, "Wrong content type"),
        (422, "Invalid field (named in error.field)"),
        (429, "Too many validations at once (Retry-After)"),
        (503, "State store busy or unavailable (Retry-After)"),
    )
}


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.extra = status, code, message, field, extra
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    detail.update(extra)
    return JSONResponse(status_code=status, content={"error": detail}, headers=headers)


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body",)]
    # pydantic names the tagged-union validator and function wrappers in loc; they are not fields.
    return ".".join(part for part in parts if not part.startswith("function-"))


def validation_problem(exc: ValidationError | RequestValidationError, prefix: str = "") -> ApiProblem:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return ApiProblem(400, "malformed_json", "the request body is not valid JSON")
    field = _loc_to_field(tuple(first.get("loc", ())))
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ApiProblem(422, "invalid_field", f"{field or 'body'}: {message}{more}", field=field or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, field=exc.field, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problem = validation_problem(exc)
        return error_response(problem.status, problem.code, problem.message, field=problem.field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(psycopg.DataError)
    async def _unstorable(_: Request, exc: psycopg.DataError) -> JSONResponse:
        # e.g. a NUL character in a path or query value: PostgreSQL text cannot hold it.
        return error_response(422, "invalid_value", "a value in the request cannot be stored (NUL characters?)")

    @app.exception_handler(psycopg.OperationalError)
    async def _store_unavailable(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        # The state store restarting or unreachable: the request did nothing, and can be sent again.
        return error_response(
            503, "state_store_unavailable", "the state store is unavailable; retry", headers={"Retry-After": "2"}
        )

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_: Request, exc: PoolTimeout) -> JSONResponse:
        return error_response(
            503, "service_busy", "no state-store connection became free in time; retry", headers={"Retry-After": "1"}
        )

    @app.exception_handler(SecretKeyError)
    async def _wrong_key(_: Request, exc: SecretKeyError) -> JSONResponse:
        # A configuration fault of the service, not of the request: say which and how to fix it (no key in it).
        return error_response(500, "secret_key_mismatch", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The message may carry anything (a DSN, a secret): only the type name leaves the process.
        return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); see the service log")
