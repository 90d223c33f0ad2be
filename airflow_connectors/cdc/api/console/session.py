"""Console sign-in: the API token is checked once, then an expiring signed cookie stands for it; CSRF tokens.

Cookies are signed with a key derived from the service's secret key *and* its API token, so changing either one
signs every browser out. The cookie holds no secret, only a random session id and its expiry. Each action's form
carries a CSRF token bound to that session id; the sign-in form carries one bound to a short-lived sign-in cookie
(so a third-party page cannot sign a browser in to its own session either).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from airflow_connectors.cdc.api.auth import require_token
from airflow_connectors.cdc.api.errors import ApiProblem

SESSION_COOKIE = "cdc_console_session"
SIGN_IN_COOKIE = "cdc_console_sign_in"
FLASH_COOKIE = "cdc_console_flash"
COOKIE_PATH = "/console"
SIGN_IN_SECONDS = 15 * 60  # how long a sign-in form stays valid
FLASH_SECONDS = 60


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form was posted without this session's CSRF token."""


class Signer:
    """HMAC-SHA256 over a small JSON payload, with an ``exp`` (epoch seconds) checked on the way back."""

    def __init__(self, secret_key: str, api_token: str | None) -> None:
        newest = secret_key.split(",")[0].strip().encode()
        self._key = hmac.new(newest, b"console-session:" + (api_token or "").encode(), hashlib.sha256).digest()

    def mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, payload: dict[str, Any], seconds: float) -> str:
        body = base64.urlsafe_b64encode(json.dumps({**payload, "exp": int(time.time() + seconds)}).encode()).decode()
        return f"{body}.{self.mac('cookie', body)}"

    def unsign(self, value: str | None) -> dict[str, Any] | None:
        """The payload of a cookie this signer made and that has not expired, else None."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self.mac("cookie", body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
            return None
        return payload


@dataclass(frozen=True)
class ConsoleAuth:
    """What the console routes need to know about sign-in (kept on ``app.state.console_auth``)."""

    signer: Signer
    session_seconds: int
    token_required: bool


@dataclass(frozen=True)
class Session:
    session_id: str
    expires: int
    csrf_token: str


def _auth(request: Request) -> ConsoleAuth:
    return request.app.state.console_auth  # type: ignore[no-any-return]


def token_accepted(request: Request, token: str) -> bool:
    """The API's own token check (one rule for the API and the console)."""
    try:
        require_token(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
    except ApiProblem:
        return False
    return True


def _set_cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def current_session(request: Request) -> Session | None:
    auth = _auth(request)
    payload = auth.signer.unsign(request.cookies.get(SESSION_COOKIE))
    if payload is None or not isinstance(payload.get("sid"), str):
        return None
    return Session(payload["sid"], payload["exp"], auth.signer.mac("csrf", payload["sid"]))


def require_session(request: Request) -> Session:
    """Dependency of every console page and action but sign-in."""
    session = current_session(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path if request.method == "GET" else COOKIE_PATH + "/")
    return session


def start_session(request: Request, response: Response) -> None:
    auth = _auth(request)
    value = auth.signer.sign({"sid": secrets.token_urlsafe(18)}, auth.session_seconds)
    _set_cookie(request, response, SESSION_COOKIE, value, auth.session_seconds)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def check_csrf(session: Session, given: str | None) -> None:
    if not given or not hmac.compare_digest(given, session.csrf_token):
        raise CsrfRejected()


# -- the sign-in form's own CSRF token ----------------------------------------------------------------------------


def new_sign_in(request: Request) -> tuple[str, str]:
    """A sign-in nonce for the browser's cookie and the token the form must send back with it."""
    nonce = secrets.token_urlsafe(18)
    return nonce, _auth(request).signer.mac("sign-in", nonce)


def set_sign_in_cookie(request: Request, response: Response, nonce: str) -> None:
    value = _auth(request).signer.sign({"nonce": nonce}, SIGN_IN_SECONDS)
    _set_cookie(request, response, SIGN_IN_COOKIE, value, SIGN_IN_SECONDS)


def check_sign_in_csrf(request: Request, given: str | None) -> None:
    auth = _auth(request)
    payload = auth.signer.unsign(request.cookies.get(SIGN_IN_COOKIE))
    if payload is None or not isinstance(payload.get("nonce"), str) or not given:
        raise CsrfRejected()
    if not hmac.compare_digest(given, auth.signer.mac("sign-in", payload["nonce"])):
        raise CsrfRejected()


# -- one-shot messages after an action (post / redirect / get) ------------------------------------------------------


def flash(request: Request, response: Response, kind: str, message: str) -> None:
    value = _auth(request).signer.sign({"kind": kind, "message": message}, FLASH_SECONDS)
    _set_cookie(request, response, FLASH_COOKIE, value, FLASH_SECONDS)


def read_flash(request: Request) -> dict[str, str] | None:
    payload = _auth(request).signer.unsign(request.cookies.get(FLASH_COOKIE))
    if payload is None:
        return None
    return {"kind": str(payload.get("kind", "info")), "message": str(payload.get("message", ""))}


def clear_flash(request: Request, response: Response) -> None:
    """The message is shown once: the page that shows it deletes the cookie."""
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
