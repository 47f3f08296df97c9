"""reports_page.py: `/reports`, the service figures for signed-in agents, with charts.

The same report object as `inboxd report --json` and `GET /api/v1/report`
(workflow/reports.py), each figure with its definition beside it. Charts are SVG made
on the server (charts.py) and embedded as images, so the page runs no script; its
policy differs from the other pages only in allowing those `data:` images.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from inboxd.db import session_scope
from inboxd.models import utcnow
from inboxd.runtime import Runtime
from inboxd.web import charts
from inboxd.web.security import PAGE_CSP
from inboxd.web.views import Me, page
from inboxd.workflow import report_text, reports

REPORTS_CSP = PAGE_CSP.replace("img-src 'self'", "img-src 'self' data:")
SPANS = ("7d", "30d", "90d", "365d")


def build_router(rt: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/reports", response_class=HTMLResponse)
    def show(request: Request, me: Me) -> Response:
        args = request.query_params
        asked = {name: args.get(name, "").strip()[:40] for name in ("since", "from", "to", "cal")}
        error = ""
        try:
            with session_scope(rt.engine) as session:
                data = reports.run_report(
                    session,
                    rt.config,
                    utcnow(),
                    since=asked["since"] or (None if asked["from"] or asked["to"] else "30d"),
                    from_date=_date(asked["from"]),
                    to_date=_date(asked["to"]),
                    by="agent",
                    calendar=asked["cal"] or None,
                )
        except ValueError as exc:
            error = str(exc)
            with session_scope(rt.engine) as session:
                data = reports.run_report(session, rt.config, utcnow(), by="agent")
        response = page(
            request,
            rt,
            "reports.html",
            status_code=400 if error else 200,
            report=data,
            f=data["figures"],
            charts=_charts(data),
            asked=asked,
            spans=SPANS,
            calendars=[c.name for c in getattr(rt.config, "calendars", ())],
            error=error,
            duration=report_text.duration,
            timings=report_text.TIMINGS,
        )
        response.headers["Content-Security-Policy"] = REPORTS_CSP
        return response

    return router


def _date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"a date like 2026-11-30, not {text!r}") from None


def _charts(data: dict[str, Any]) -> dict[str, str]:
    f, series = data["figures"], data["series"]
    targets = {k: v for k, v in f["sla"].items() if k != "definition"}
    out = {
        "volume": charts.volume(series["days"], series["created"], series["solved"]),
        "first_reply": charts.durations(
            "First reply time (tickets)", series["first_reply_minutes"]
        ),
        "resolution": charts.durations(
            "Full resolution time (tickets)", series["full_resolution_minutes"]
        ),
        "backlog": charts.bars("Backlog by age", f["backlog"]["by_age"]),
        "csat": charts.bars("Satisfaction", {"good": f["csat"]["good"], "bad": f["csat"]["bad"]}),
        "self_service": charts.bars(
            "Self-service",
            {
                "suggested": f["self_service"]["suggested"],
                "solved by customer": f["self_service"]["solved"],
                "deflected": f["self_service"]["deflected"],
            },
        ),
    }
    if targets:
        out["sla"] = charts.stacked(
            "SLA outcomes per target",
            list(targets),
            {
                "achieved": [v["achieved"] for v in targets.values()],
                "breached": [v["breached"] for v in targets.values()],
            },
        )
    return out
