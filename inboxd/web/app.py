"""app.py: the HTTP side of the daemon, one app on [web] host:port: the agents' web view
(views.py), the customer status page (status_page.py), the REST API (api.py), liveness
and Prometheus metrics.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException

from inboxd import __version__
from inboxd.errors import Forbidden, InboxdError, InvalidValue, NotFound
from inboxd.metrics import Metrics
from inboxd.render import BUNDLED
from inboxd.runtime import Runtime
from inboxd.web import (
    agents_api,
    api,
    csat_page,
    kb_pages,
    new_ticket_page,
    reports_page,
    settings_page,
    status_page,
    ticket_tools,
    views,
)
from inboxd.web.security import SecurityHeaders

STATIC = BUNDLED / "web" / "static"


def create_app(rt: Runtime, metrics: Metrics, wake: views.Wakeups | None = None) -> FastAPI:
    """The ASGI app that `inboxd serve` runs on [web] host:port."""
    wake = wake or views.Wakeups()
    app = FastAPI(
        title="inboxd",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.add_middleware(SecurityHeaders, rt=rt)
    api.install(app, rt)
    app.include_router(agents_api.build_router(rt))
    app.include_router(new_ticket_page.build_router(rt, wake))  # before /tickets/{id}
    views.install(app, rt, wake)
    app.include_router(ticket_tools.build_router(rt, wake))
    app.include_router(status_page.build_router(rt, wake))
    app.include_router(reports_page.build_router(rt))
    app.include_router(settings_page.build_router(rt))
    app.include_router(kb_pages.build_router(rt))
    app.include_router(csat_page.build_router(rt))
    _errors(app, rt)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    install_ops(app, rt, metrics, with_metrics=not rt.config.metrics.own_listener)
    return app


def create_ops_app(rt: Runtime, metrics: Metrics) -> FastAPI:
    """The app of `[metrics] host:port`: /healthz and /metrics only, nothing an agent uses."""
    app = FastAPI(title="inboxd metrics", docs_url=None, redoc_url=None, openapi_url=None)
    install_ops(app, rt, metrics, with_metrics=True)
    return app


def install_ops(app: FastAPI, rt: Runtime, metrics: Metrics, *, with_metrics: bool) -> None:
    """/healthz, and /metrics unless it has a listener of its own.

    With a token configured, /metrics answers 401 without it, and /healthz tells an
    unauthenticated caller only "ok" or "error" — never the database's error text."""
    token = rt.config.metrics_token()

    def authorised(request: Request) -> bool:
        if not token:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # any failure to reach the database means "not healthy"
            body = {"status": "error"}
            if authorised(request):
                body["database"] = str(exc)[:200]
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok"})

    if not with_metrics:
        return

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus(request: Request) -> PlainTextResponse:
        if not authorised(request):
            return PlainTextResponse(
                "a bearer token is required ([metrics] token)\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="inboxd metrics"'},
            )
        return PlainTextResponse(metrics.render(rt.engine), media_type="text/plain; version=0.0.4")


def _errors(app: FastAPI, rt: Runtime) -> None:
    """Errors as JSON of one shape under /api (api.ErrorOut), as a page elsewhere; never a
    traceback."""

    def answer(
        request: Request, status: int, message: str, errors: list[dict[str, str]] | None = None
    ) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(api.error_body(message, errors), status_code=status)
        return views.page(request, rt, "error.html", status, message=message)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return answer(request, 404, str(exc))

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return answer(request, 403, str(exc))

    @app.exception_handler(InvalidValue)
    async def invalid_value(request: Request, exc: InvalidValue) -> Response:
        return answer(request, 422, str(exc), [{"field": exc.field, "error": exc.reason}])

    @app.exception_handler(InboxdError)
    async def refused(request: Request, exc: InboxdError) -> Response:
        return answer(request, 422 if exc.exit_code == 1 else 500, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            # api.py raises with a whole ErrorOut (a refused block); the rest is a sentence.
            body = exc.detail if isinstance(exc.detail, dict) else api.error_body(str(exc.detail))
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):
            # The offending input is not echoed back: it may be huge, or not even
            # encodable (a lone surrogate in the JSON).
            refused = [
                {
                    "field": ".".join(str(part) for part in e.get("loc", ())),
                    "error": str(e.get("msg", "")),
                }
                for e in exc.errors()
            ]
            first = refused[0] if refused else {"field": "", "error": "invalid request"}
            return answer(
                request, 422, f"invalid request: {first['field']}: {first['error']}", refused
            )
        problems = "; ".join(str(e.get("msg", "")) for e in exc.errors()[:3])
        if any("csrf" in str(e.get("loc", "")) for e in exc.errors()):
            return answer(request, 403, "refused: the form's security token is missing")
        return answer(request, 422, f"invalid request: {problems}")
