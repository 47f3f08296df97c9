"""web.py: the HTTP side of the daemon: liveness, Prometheus metrics, the REST API.

The web view and the customer status page come later on this same app.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from inboxd import __version__, api
from inboxd.metrics import Metrics
from inboxd.runtime import Runtime


def create_app(rt: Runtime, metrics: Metrics) -> FastAPI:
    """The ASGI app that `inboxd serve` runs on [web] host:port."""
    app = FastAPI(
        title="inboxd",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    api.install(app, rt)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with rt.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # any failure to reach the database means "not healthy"
            return JSONResponse({"status": "error", "database": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(rt.engine), media_type="text/plain; version=0.0.4")

    return app
