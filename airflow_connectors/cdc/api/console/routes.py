"""The console's pages and actions under ``/console/``.

Actions call the API's own route functions, so a button in the console and a call to the API obey the same rules
(409 when a run is active, a paused connector starts nothing, ...); an :class:`ApiProblem` becomes a message on
the page instead of a JSON body. Every action is a POST carrying the session's CSRF token, answered with a redirect
(post / redirect / get) and a one-shot message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from airflow_connectors.cdc.api import routes_connectors, routes_runs
from airflow_connectors.cdc.api.console import charts, session, views
from airflow_connectors.cdc.api.deps import Conn, Store, require_connector
from airflow_connectors.cdc.api.errors import ApiProblem
from airflow_connectors.cdc.engine.interface import RunMode
from airflow_connectors.cdc.runs import store as run_store
from airflow_connectors.cdc.settings import ServiceSettings

PREFIX = "/console"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    # Scripts and styles only from this service (no inline script): an injected tag would not run anyway.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SessionDep = Annotated[session.Session, Depends(session.require_session)]


def human_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("airflow_connectors.cdc.api.console", "templates"),
        autoescape=True,  # every value is escaped; only charts (Markup built with escaping) pass as HTML
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        urlpart=lambda value: quote(str(value), safe=""),
        human_bytes=human_bytes,
        number=lambda value: "-" if value is None else f"{value:,}",
        when=when,
        duration=views.duration_text,
        endpoint=views.endpoint,
    )
    env.globals.update(
        schedule_text=views.schedule_text,
        run_duration=views.run_duration,
        states=views.CONNECTOR_STATES,
        prefix=PREFIX,
        RunMode=RunMode,
    )
    return env


TEMPLATES = _environment()


def render(
    request: Request,
    template: str,
    *,
    current: session.Session | None,
    status_code: int = 200,
    refresh: int | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: the template with the session (CSRF token), the one-shot message and the security headers.

    ``refresh``: seconds between the page's live regions reloading themselves (console.js), None for never."""
    body = TEMPLATES.get_template(template).render(
        session=current,
        flash=session.read_flash(request),
        refresh=refresh,
        token_required=request.app.state.console_auth.token_required,
        **context,
    )
    response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
    session.clear_flash(request, response)
    return response


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def connector_path(connector_id: str) -> str:
    return f"{PREFIX}/connectors/{quote(connector_id, safe='')}"


def run_path(connector_id: str, run_id: str) -> str:
    return f"{connector_path(connector_id)}/runs/{quote(run_id, safe='')}"


def _safe_next(value: str | None) -> str:
    """Only paths of this console: an open redirect to another site is refused."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX + "/"


# -- sign-in -------------------------------------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    if session.current_session(request) is not None:  # already signed in (e.g. a second tab): go on
        return redirect(_safe_next(next))
    return _sign_in(request, _safe_next(next))


def _sign_in(request: Request, next_path: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    nonce, csrf = session.new_sign_in(request)
    response = render(
        request, "sign_in.html", current=None, status_code=status_code, next_path=next_path, error=error, csrf=csrf
    )
    session.set_sign_in_cookie(request, response, nonce)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",  # noqa: A002
) -> Response:
    session.check_sign_in_csrf(request, csrf_token)
    next_path = _safe_next(next)
    if not session.token_accepted(request, token):
        return _sign_in(request, next_path, "That is not the service's API token.", status_code=401)
    response = redirect(next_path)
    session.start_session(request, response)
    return response


@router.post("/sign-out")
def sign_out(current: SessionDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    session.check_csrf(current, csrf_token)
    response = redirect(f"{PREFIX}/sign-in")
    session.end_session(response)
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    content = resources.files("airflow_connectors.cdc.api.console").joinpath("static", name).read_bytes()
    return Response(content, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"})


# -- pages ---------------------------------------------------------------------------------------------------------


@router.get("", include_in_schema=False)
def root() -> Response:
    return redirect(PREFIX + "/")


@router.get("/", response_class=HTMLResponse)
def connectors_page(
    request: Request,
    current: SessionDep,
    conn: Conn,
    store: Store,
    state: Annotated[str | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    chosen = state if state in views.CONNECTOR_STATES else None
    rows = views.connector_rows(store, conn, state=chosen, name=q)
    return render(request, "connectors.html", current=current, refresh=5, rows=rows, state=chosen, q=q or "")


def _not_found(request: Request, current: session.Session, problem: ApiProblem) -> HTMLResponse:
    return render(request, "problem.html", current=current, status_code=problem.status, problem=problem)


@router.get("/connectors/{connector_id}", response_class=HTMLResponse)
def connector_page(
    request: Request,
    connector_id: str,
    current: SessionDep,
    conn: Conn,
    store: Store,
    cursor: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    try:
        record = require_connector(store, conn, connector_id)
        view = views.connector_view(conn, record, cursor=cursor)
    except ApiProblem as problem:
        return _not_found(request, current, problem)
    except ValueError as exc:
        return _not_found(request, current, ApiProblem(422, "invalid_field", str(exc), field="cursor"))
    rows_chart = charts.bar_chart(
        "Rows per run",
        [
            charts.Bar(
                float(run.rows_total),
                f"{when(run.created_at)}: {run.state}, {run.rows_total:,} rows",
                charts.STATE_COLOURS.get(run.state, "#1565c0"),
                run_path(connector_id, run.run_id),
            )
            for run in view.chart_runs
        ],
        unit=" rows",
        left_label=when(view.chart_runs[0].created_at) if view.chart_runs else "",
        right_label=when(view.chart_runs[-1].created_at) if view.chart_runs else "",
    )
    lag_points = [
        (run.created_at.timestamp(), float(run.lag_bytes)) for run in view.chart_runs if run.lag_bytes is not None
    ]
    lag_chart = charts.line_chart(
        "Replication lag reported by each run (bytes)",
        lag_points,
        unit="B",
        left_label=when(datetime.fromtimestamp(lag_points[0][0], UTC)) if lag_points else "",
        right_label=when(datetime.fromtimestamp(lag_points[-1][0], UTC)) if lag_points else "",
    )
    return render(
        request,
        "connector.html",
        current=current,
        refresh=3 if view.active_run else 10,
        view=view,
        row=view.row,
        connector=record.connector,
        rows_chart=rows_chart,
        lag_chart=lag_chart,
        cursor=cursor,
    )


@router.get("/connectors/{connector_id}/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, connector_id: str, run_id: str, current: SessionDep, conn: Conn, store: Store
) -> HTMLResponse:
    try:
        record = require_connector(store, conn, connector_id)
        row = run_store.get_run(conn, connector_id, run_id)
        if row is None:
            raise ApiProblem(404, "not_found", f"run {run_id!r} of connector {connector_id!r} does not exist")
    except ApiProblem as problem:
        return _not_found(request, current, problem)
    view = views.run_view(conn, record, row)
    samples = view.lag_samples
    lag_chart = charts.line_chart(
        "Replication lag during the run (bytes)",
        [(at.timestamp(), float(lag)) for at, lag in samples],
        unit="B",
        left_label=when(samples[0][0]) if samples else "",
        right_label=when(samples[-1][0]) if samples else "",
    )
    return render(
        request,
        "run.html",
        current=current,
        refresh=2 if view.active else None,
        view=view,
        run=view.run,
        connector=record.connector,
        lag_chart=lag_chart,
    )


# -- actions -------------------------------------------------------------------------------------------------------


def _act(request: Request, back: str, action: Any, done: str) -> Response:
    """Run an API action; redirect to ``back`` (or where the action says) with its outcome as a message."""
    try:
        target = action() or back
    except ApiProblem as problem:
        response = redirect(back)
        session.flash(request, response, "error", problem.message)
        return response
    response = redirect(target)
    session.flash(request, response, "ok", done)
    return response


@router.post("/connectors/{connector_id}/runs")
def start_run(
    request: Request,
    connector_id: str,
    current: SessionDep,
    conn: Conn,
    store: Store,
    csrf_token: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = RunMode.CATCH_UP.value,
    resync: Annotated[str, Form()] = "none",
    table: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """``resync``: ``none``, ``all`` or ``selected`` (the ``table`` checkboxes)."""
    session.check_csrf(current, csrf_token)
    tables = table or []
    body: dict[str, Any] = {"mode": mode, "resync": {"none": False, "all": True}.get(resync, tables)}

    def start() -> str:
        if resync == "selected" and not tables:
            raise ApiProblem(422, "invalid_field", "Choose the tables to resync first.", field="resync")
        run = routes_runs.start_run(connector_id, conn, store, body)
        return run_path(connector_id, run.run_id)

    what = {"none": "", "all": ", resyncing every table"}.get(resync, f", resyncing {', '.join(tables)}")
    return _act(request, connector_path(connector_id), start, f"Started a {mode.replace('_', '-')} run{what}.")


@router.post("/connectors/{connector_id}/runs/{run_id}/cancel")
def cancel_run(
    request: Request,
    connector_id: str,
    run_id: str,
    current: SessionDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    session.check_csrf(current, csrf_token)

    def cancel() -> None:
        routes_runs.cancel_run(connector_id, run_id, conn)

    return _act(request, run_path(connector_id, run_id), cancel, "Cancel requested.")


@router.post("/connectors/{connector_id}/commands")
def command(
    request: Request,
    connector_id: str,
    current: SessionDep,
    conn: Conn,
    store: Store,
    csrf_token: Annotated[str, Form()] = "",
    command: Annotated[str, Form()] = "",
) -> Response:
    """``pause`` / ``resume`` (the API's connector commands)."""
    session.check_csrf(current, csrf_token)

    def run_command() -> None:
        if command not in ("pause", "resume"):
            raise ApiProblem(422, "invalid_field", f"unknown command {command!r}", field="command")
        routes_connectors.connector_command(connector_id, Response(), conn, store, {"command": command})

    done = {"pause": "Paused: no runs start until it is resumed.", "resume": "Resumed."}.get(command, "")
    return _act(request, connector_path(connector_id), run_command, done)


# -- wiring --------------------------------------------------------------------------------------------------------


def install_console(app: FastAPI, settings: ServiceSettings) -> None:
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app.state.console_auth = session.ConsoleAuth(
        signer=session.Signer(settings.secret_key.get_secret_value(), token),
        session_seconds=settings.console_session_seconds,
        token_required=token is not None,
    )
    app.include_router(router)

    @app.exception_handler(session.SignInRequired)
    async def _sign_in_first(_: Request, exc: session.SignInRequired) -> Response:
        return redirect(f"{PREFIX}/sign-in?next={quote(exc.next_path, safe='')}")

    @app.exception_handler(session.CsrfRejected)
    async def _csrf(_: Request, __: session.CsrfRejected) -> Response:
        body = "The form was stale or came from another site (CSRF check failed). Reload the page and try again."
        return HTMLResponse(body, status_code=403, headers=SECURITY_HEADERS)
