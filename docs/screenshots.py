"""Take the README's screenshots of the web view from a real run.

    python docs/screenshots.py          # writes docs/ticket-list.png, docs/ticket-page.png
    python docs/screenshots.py kb       # writes docs/kb.png (the help centre, /kb)
    python docs/screenshots.py reports  # writes docs/reports.png (/reports, two weeks of work)
    python docs/screenshots.py tools    # docs/bulk-actions.png, macro-picker.png, phone-*.png

Mail goes through the real pipeline into a throwaway SQLite database, agents act through
the same operations as the web view, and headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright) photographs the pages served by the real app. Chinese text needs a
CJK font (Debian: `apt-get install fonts-wqy-microhei`), or it shows as boxes.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import chromium_path, sign_in, web_server  # noqa: E402
from conftest import make_config  # noqa: E402
from mailbuilder import mail  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, sync_playwright  # noqa: E402

from inboxd import pipeline  # noqa: E402
from inboxd.agents import operations  # noqa: E402
from inboxd.runtime import Runtime, open_runtime  # noqa: E402

CUSTOMERS = [
    ("Carol Customer <carol@example.org>", "Order 1042 not delivered",
     "Hello,\n\nmy order 1042 was due on Friday and has not arrived.\n"
     "Tracking says 'label created' since Tuesday.\n\nCarol"),
    ("Dan Ng <dan@example.net>", "Invoice shows the wrong VAT number",
     "Hi, our VAT number is DE123456789, the invoice has an old one. Dan"),
    ("李雷 <lilei@example.cn>", "发票抬头需要修改",
     "您好，\n\n请把发票抬头改为“北京示例科技有限公司”。\n\n谢谢！"),
    ("Eva Svensson <eva@example.se>", "Cannot log in after password reset",
     "The reset link says it has expired, every time. Eva"),
    ("Frank <frank@example.com>", "Refund for damaged parcel",
     "The box arrived crushed; photos attached in my next mail."),
    ("Grace <grace@example.org>", "Bulk order quote for 200 units",
     "Could you send a quote for 200 units, delivery in March?"),
]  # fmt: skip


@contextmanager
def served_chromium(rt: Runtime) -> Iterator[tuple[str, Browser]]:
    """The app on a loopback port and Debian's Chromium, headless, to photograph it."""
    with web_server(rt) as base, sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield base, browser
        finally:
            browser.close()


def script_off(browser: Browser, width: int, height: int) -> BrowserContext:
    """A window of that size that runs no script, as an agent may browse."""
    return browser.new_context(
        java_script_enabled=False, viewport={"width": width, "height": height}
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rt = open_runtime(make_config(Path(tmp), inboxd={"support_name": "Example Support"}))
        ids = []
        for sender, subject, body in CUSTOMERS:
            result = pipeline.ingest(rt, mail(sender=sender, subject=subject, body=body))
            assert result.ticket is not None
            ids.append(result.ticket)
        first = ids[0]
        operations.run_commands(rt, first, "#assign bob\n#tag shipping", None, "demo")
        operations.post_reply(
            rt, first, "bob@example.com",
            "Checked with the carrier: the parcel is in their depot in Leipzig.",
            note=True, source="demo",
        )  # fmt: skip
        operations.post_reply(
            rt, first, "bob@example.com",
            "Hi Carol,\n\nthe parcel left our warehouse this morning; it should reach you "
            "on Wednesday.\n\nBob",
            note=False, source="demo",
        )  # fmt: skip
        operations.run_commands(rt, first, "#status pending", "bob@example.com", "demo")
        operations.run_commands(rt, ids[1], "#priority high\n#tag billing", None, "demo")
        operations.run_commands(rt, ids[2], "#tag billing\n#assign alice", None, "demo")
        operations.run_commands(rt, ids[3], "#priority urgent", None, "demo")
        operations.run_commands(rt, ids[5], "#status solved", None, "demo")
        with served_chromium(rt) as (base, browser):
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            sign_in(page, rt, base, "bob@example.com")
            page.screenshot(path=str(HERE / "ticket-list.png"), full_page=True)
            page.goto(f"{base}/tickets/{first}")
            page.set_viewport_size({"width": 1280, "height": 1000})
            page.screenshot(path=str(HERE / "ticket-page.png"), full_page=True)
    print(f"wrote {HERE / 'ticket-list.png'} and {HERE / 'ticket-page.png'}")


def help_centre() -> None:
    """/kb searched for 忘記密碼 over the shipped sample articles, script off."""
    with tempfile.TemporaryDirectory() as tmp:
        kb = {"dir": str(HERE.parent / "data" / "kb")}
        rt = open_runtime(make_config(Path(tmp), inboxd={"support_name": "Example Support"}, kb=kb))
        with served_chromium(rt) as (base, browser):
            context = script_off(browser, 1100, 600)
            page = context.new_page()
            page.goto(f"{base}/kb?q=%E5%BF%98%E8%A8%98%E5%AF%86%E7%A2%BC")  # 忘記密碼
            page.screenshot(path=str(HERE / "kb.png"), full_page=True)
    print(f"wrote {HERE / 'kb.png'}")


def reports() -> None:
    """/reports over two weeks of made-up but consistent work: 60 tickets whose events are
    spread over the last 14 days, replies and solves hours apart, SLA outcomes recorded by
    the clock, and a few ratings."""
    import random
    from datetime import timedelta

    from sqlmodel import col, select

    from inboxd.db import session_scope
    from inboxd.models import Event, Ticket, utcnow
    from inboxd.workflow import clock, csat

    rng = random.Random(4)
    policy = [{"name": "standard", "first_reply": "8h", "resolution": "48h"}]
    with tempfile.TemporaryDirectory() as tmp:
        rt = open_runtime(
            make_config(Path(tmp), inboxd={"support_name": "Example Support"}, sla=policy)
        )
        now = utcnow()
        for n in range(60):
            sender, subject, body = CUSTOMERS[n % len(CUSTOMERS)]
            who = sender.replace("@", f"+{n}@")
            ticket_id = pipeline.ingest(rt, mail(sender=who, subject=subject, body=body)).ticket
            assert ticket_id is not None
            agent = rng.choice(["alice@example.com", "bob@example.com"])
            if rng.random() < 0.85:
                operations.post_reply(rt, ticket_id, agent, "On it.", note=False, source="demo")
            if rng.random() < 0.7:
                operations.run_commands(rt, ticket_id, "#status solved", agent, "demo")
            with session_scope(rt.engine) as session:
                events = session.exec(
                    select(Event).where(Event.ticket_id == ticket_id).order_by(col(Event.id))
                ).all()
                at = now - timedelta(hours=rng.uniform(2, 14 * 24))
                ticket = session.get(Ticket, ticket_id)
                assert ticket is not None
                ticket.created_at = at
                for event in events:
                    if event.type in ("reply", "status"):
                        at = min(at + timedelta(hours=rng.lognormvariate(1.2, 1.0)), now)
                    event.at = at
                if ticket.status == "solved" and rng.random() < 0.6:
                    ticket.status = "solved"
                    csat.record_vote(session, ticket, rng.choice(["good"] * 4 + ["bad"]), who)
        with session_scope(rt.engine) as session:
            clock.tick(rt, session, now)
        with served_chromium(rt) as (base, browser):
            context = script_off(browser, 1280, 900)
            page = context.new_page()
            sign_in_no_script(page, rt, base, "alice@example.com")
            page.goto(f"{base}/reports?since=14d")
            page.screenshot(path=str(HERE / "reports.png"), full_page=True)
    print(f"wrote {HERE / 'reports.png'}")


def tools() -> None:
    """The everyday tools (issue 16 item 9): the list after a bulk action with its
    confirmation, the reply box with a macro inserted, and the list and a ticket on a
    390 px phone, where the list becomes cards. Script off, as agents may browse."""
    with tempfile.TemporaryDirectory() as tmp:
        rt = open_runtime(make_config(Path(tmp), inboxd={"support_name": "Example Support"}))
        ids = [
            pipeline.ingest(rt, mail(sender=sender, subject=subject, body=body)).ticket
            for sender, subject, body in CUSTOMERS
        ]
        operations.run_commands(rt, ids[0], "#assign bob\n#tag shipping", None, "demo")
        with served_chromium(rt) as (base, browser):
            context = script_off(browser, 1280, 700)
            page = context.new_page()
            sign_in(page, rt, base, "bob@example.com")
            page.check(f"#pick-{ids[1]}")
            page.check(f"#pick-{ids[2]}")
            page.click("button[name=quick][value='#status pending']")
            page.wait_for_load_state()
            page.screenshot(path=str(HERE / "bulk-actions.png"), full_page=True)
            page.goto(f"{base}/tickets/{ids[0]}")
            page.fill("#reply-text", "Hi Carol,")
            page.select_option("#macro", "thanks")
            page.click("#insert-macro")
            page.wait_for_load_state()
            page.locator("#reply-text").scroll_into_view_if_needed()
            page.screenshot(path=str(HERE / "macro-picker.png"))
            context.close()
            phone = script_off(browser, 390, 844)
            page = phone.new_page()
            sign_in(page, rt, base, "bob@example.com")
            page.screenshot(path=str(HERE / "phone-list.png"), full_page=True)
            page.goto(f"{base}/tickets/{ids[0]}")
            page.screenshot(path=str(HERE / "phone-ticket.png"))
    print(f"wrote bulk-actions.png, macro-picker.png, phone-list.png, phone-ticket.png in {HERE}")


def sign_in_no_script(page: object, rt: object, base: str, email: str) -> None:
    sign_in(page, rt, base, email)  # the sign-in page is a plain form: no script needed


if __name__ == "__main__":
    if sys.argv[1:] == ["kb"]:
        help_centre()
    elif sys.argv[1:] == ["reports"]:
        reports()
    elif sys.argv[1:] == ["tools"]:
        tools()
    else:
        main()
