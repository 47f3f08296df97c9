"""csat.py: satisfaction surveys that mail scanners cannot answer (SPEC §10.4).

A survey is due `[csat] after` a ticket is solved, if it is still solved then; it goes on
the clock like a time rule (a `rule_due` row named SURVEY, a `rule_firing` ledger row per
solve), so it is sent once whatever restarts or daemons. It goes only to the requester of a
ticket that had a customer message and a public agent reply, never to automatic mail,
and at most once per customer in `min_days_between` days.

The customer rates by **reply**: a first line of `good`/`bad`, 1-5, 👍/👎, 好/满意/差 ... and
the rest is a comment. Only a reply that proves it received our mail (the customer's
reply token or a Message-ID of ours) from the requester counts, so a forged `From:` casts
nothing. The survey's links lead to a page (web/csat_page.py) whose own POST, with the
page's nonce and not within seconds of being served, is the fallback.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, func, select

from inboxd import languages
from inboxd.agents import notify, replies
from inboxd.config import parse_duration
from inboxd.customers import profiles
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Event, Message, RuleDue, RuleFiring, Ticket, utcnow
from inboxd.queues.outbox import compose, mailbox, queue_mail
from inboxd.render import localized
from inboxd.runtime import Runtime
from inboxd.tickets import store
from inboxd.tickets.links import status_url
from inboxd.tickets.store import insert_once
from inboxd.tickets.threader import ThreadDecision
from inboxd.tickets.tokens import make_token, token_address

SURVEY = "@csat"  # its name on the clock's tables (no rule can be named so)
ACTOR = "csat"
BAD_RATINGS = ("bad", "1", "2")  # SPEC §10.5: 1-2 count as bad on the 5-point scale
REPLACE_WITHIN = timedelta(days=28)  # a later rating within this replaces the earlier one

# First-line words, longest first when matched; the same in the languages of §10.8.
WORDS = {
    "good": (
        "good",
        "great",
        "excellent",
        "yes",
        "👍",
        "😀",
        "🙂",
        "满意",
        "很满意",
        "非常满意",
        "不错",
        "很好",
        "好",
        "滿意",
        "很滿意",
        "不錯",
        "gut",
        "sehr gut",
        "bien",
        "très bien",
        "bueno",
        "muy bien",
        "良い",
        "よかった",
        "満足",
    ),
    "bad": (
        "bad",
        "poor",
        "terrible",
        "no",
        "👎",
        "🙁",
        "😞",
        "不满意",
        "很差",
        "差",
        "不好",
        "不滿意",
        "schlecht",
        "mauvais",
        "mal",
        "malo",
        "悪い",
        "不満",
    ),
}
_BY_LENGTH = sorted(
    ((w.casefold(), r) for r, ws in WORDS.items() for w in ws), key=lambda x: -len(x[0])
)
_NUMBER = re.compile(r"^([1-5])(?:\s*/\s*5)?(?![0-9])")


def parse_rating(text: str) -> tuple[str, str] | None:
    """(rating, comment) when the first non-empty line starts with a rating; else None.

    Ratings are "good", "bad" or "1".."5" (full-width digits too)."""
    lines = [line for line in text.strip().splitlines()]
    if not lines:
        return None
    first = unicodedata.normalize("NFKC", lines[0]).strip()
    rest = "\n".join(lines[1:]).strip()
    match = _NUMBER.match(first)
    if match:
        return match.group(1), _comment(first[match.end() :], rest)
    folded = first.casefold()
    for word, rating in _BY_LENGTH:
        if folded.startswith(word):
            after = first[len(word) :]
            # A latin word must end there ("good", not "goodbye"); CJK and emoji need not.
            if word.isascii() and word.isalpha() and after[:1].isalnum():
                continue
            return rating, _comment(after, rest)
    return None


def _comment(tail: str, rest: str) -> str:
    tail = tail.lstrip(" \t,.:;!-—，。：；！、")
    return "\n".join(p for p in (tail.strip(), rest) if p)


# -- the survey on the clock --------------------------------------------------------------


def arm(session: Session, rt: Runtime, ticket_ids: set[int]) -> None:
    """A survey is due `after` the latest solve of each ticket that changed."""
    if not rt.config.csat.enabled or not ticket_ids:
        return
    after = timedelta(minutes=parse_duration(rt.config.csat.after))
    ids = sorted(ticket_ids)
    solves = dict(
        session.exec(
            select(Event.ticket_id, func.max(Event.id))
            .where(
                col(Event.ticket_id).in_(ids), Event.type == "status", Event.to_value == "solved"
            )
            .group_by(col(Event.ticket_id))
        ).all()
    )
    spent = set(
        session.exec(
            select(RuleFiring.ticket_id, RuleFiring.key).where(
                col(RuleFiring.ticket_id).in_(ids), RuleFiring.rule == SURVEY
            )
        ).all()
    )
    stored = {
        d.ticket_id: d
        for d in session.exec(
            select(RuleDue).where(col(RuleDue.ticket_id).in_(ids), RuleDue.rule == SURVEY)
        )
    }
    for ticket_id in ids:
        solve_id = solves.get(ticket_id)
        row = stored.get(ticket_id)
        if solve_id is None or (ticket_id, f"time:{solve_id}") in spent:
            if row is not None:
                session.delete(row)
            continue
        if row is not None and row.since_event_id == solve_id:
            continue
        solve = session.get(Event, solve_id)
        assert solve is not None
        at = solve.at if solve.at.tzinfo else solve.at.replace(tzinfo=UTC)
        if row is None:  # another daemon may insert it at the same moment
            insert_once(session, RuleDue, {
                "ticket_id": ticket_id, "rule": SURVEY,
                "since_event_id": solve_id, "due_at": at + after,
            })  # fmt: skip
        else:
            row.since_event_id, row.due_at = solve_id, at + after
    session.flush()


def send_due(session: Session, rt: Runtime, now: datetime) -> int:
    """Mail the surveys that fell due (each once); return how many were sent."""
    due = session.exec(
        select(RuleDue).where(RuleDue.rule == SURVEY, col(RuleDue.due_at) <= now)
    ).all()
    sent = 0
    for row in due:
        session.delete(row)
        key = f"time:{row.since_event_id}"
        if not insert_once(
            session,
            RuleFiring,
            {"rule": SURVEY, "ticket_id": row.ticket_id, "key": key, "outcome": "fired", "at": now},
        ):
            continue
        ticket = session.get(Ticket, row.ticket_id)
        if ticket is None:
            continue
        why = _not_surveyed(session, rt, ticket, now)
        if why:
            store.record_event(session, ticket, ACTOR, "csat_skipped", None, why)
            continue
        _mail_survey(session, rt, ticket)
        store.record_event(session, ticket, ACTOR, "csat_sent", None, ticket.requester)
        sent += 1
    session.flush()
    return sent


def _not_surveyed(session: Session, rt: Runtime, ticket: Ticket, now: datetime) -> str:
    """Why this ticket gets no survey ("" when it gets one)."""
    assert ticket.id is not None
    if ticket.status != "solved" or ticket.merged_into is not None or ticket.spam:
        return "no longer solved"
    from_requester = session.exec(
        select(Message.kind).where(
            Message.ticket_id == ticket.id, Message.from_email == ticket.requester
        )
    ).all()
    if "customer" not in from_requester or "auto" in from_requester:
        return "the requester's mail is automatic or missing"
    replied = session.exec(
        select(Event.id).where(Event.ticket_id == ticket.id, Event.type == "reply")
    ).first()
    if replied is None:
        return "no public agent reply"
    days = rt.config.csat.min_days_between
    if days:
        recent = session.exec(
            select(Event.id)
            .join(Ticket, col(Ticket.id) == col(Event.ticket_id))
            .where(
                Ticket.requester == ticket.requester,
                Event.type == "csat_sent",
                col(Event.at) >= now - timedelta(days=days),
            )
        ).first()
        if recent is not None:
            return f"the customer had a survey in the last {days} days"
    return ""


def _mail_survey(session: Session, rt: Runtime, ticket: Ticket) -> None:
    assert ticket.id is not None
    cfg = rt.config.inboxd
    first = session.exec(
        select(Message.text)
        .where(Message.ticket_id == ticket.id, Message.kind == "customer")
        .order_by(col(Message.id))
    ).first()
    # The customer's language (SPEC §10.8); for a ticket older than profiles' languages,
    # the one its first message was written in.
    language = profiles.language_of(session, ticket.requester) or languages.detect(
        f"{ticket.subject}\n{first or ''}"
    )
    link = status_url(cfg.web_base_url, rt.secret_key, ticket.id).replace("/status/", "/csat/")
    survey = localized(
        "email/csat_survey.txt.j2",
        language,
        {"ticket": ticket, "link": link, "scale": rt.config.csat.scale},
        cfg.templates_dir,
    )
    token = make_token(rt.secret_key, ticket.id)
    tag = cfg.subject_tag.replace("{id}", str(ticket.id))
    headers = [
        ("From", mailbox(cfg.support_name, cfg.support_address)),
        ("To", ticket.requester),
        ("Reply-To", mailbox(cfg.support_name, token_address(cfg.support_address, token))),
        # An admin's template that sets no subject: the ticket's own.
        ("Subject", f"{tag} {survey.subject or ticket.subject}"),
        ("In-Reply-To", notify.thread_root(rt, ticket.id)),
        ("Auto-Submitted", "auto-generated"),
    ]
    queue_mail(
        session,
        compose(
            headers,
            survey.text.rstrip("\n") + "\n" + replies.status_footer(rt, ticket.id, language),
            cfg=rt.config,
            lang=survey.language,
        ),
        mail_from=cfg.support_address,
        rcpt_to=[ticket.requester],
        ticket_id=ticket.id,
        purpose="csat",
    )


# -- votes ---------------------------------------------------------------------------------


def vote_by_reply(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    decision: ThreadDecision,
    message_pk: int,
) -> bool:
    """The requester's rating in reply to a survey: recorded, and True (the reply then
    neither reopens the ticket nor notifies anyone)."""
    if (
        not rt.config.csat.enabled
        or decision.ticket_id is None
        or not decision.may_add_participants
    ):
        return False
    if decision.token_agent_id is not None or msg.sender is None or msg.sender_ambiguous:
        return False
    if msg.sender.email != ticket.requester or ticket.status not in ("solved", "closed"):
        return False
    surveyed = _last_survey(session, ticket)
    if surveyed is None or utcnow() - surveyed > REPLACE_WITHIN:
        return False
    message = session.get(Message, message_pk)
    if message is None or message.kind != "customer":
        return False
    found = parse_rating(message.text or "")
    if found is None:
        return False
    rating, _comment = found
    message.kind = "csat"  # the comment is the message's own text
    record_vote(session, rt, ticket, rating, msg.sender.email, message_pk=message_pk)
    return True


def record_vote(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    rating: str,
    actor: str,
    *,
    message_pk: int | None = None,
    page: str | None = None,
) -> None:
    """A `csat` event (from: the earlier rating, to: this one); a rule can act on it. A bad
    rating (bad, 1 or 2) is told to the team's lead, or to the admins (SPEC §10.9)."""
    assert ticket.id is not None
    earlier = session.exec(
        select(Event.to_value)
        .where(Event.ticket_id == ticket.id, Event.type == "csat")
        .order_by(col(Event.id).desc())
    ).first()
    store.record_event(
        session, ticket, actor, "csat", earlier, rating, message_pk=message_pk, block=page
    )
    if rating in BAD_RATINGS:
        comment = session.get(Message, message_pk) if message_pk else None
        notify.notify_agents(
            session,
            rt,
            ticket,
            comment,
            "notify:csat-bad",
            notify.recipients(session, rt, ticket, "csat-bad"),
            f"The customer rated ticket #{ticket.id} {rating}"
            + (f" (team {ticket.team})." if ticket.team else "."),
        )


def _last_survey(session: Session, ticket: Ticket) -> datetime | None:
    at = session.exec(
        select(func.max(Event.at)).where(Event.ticket_id == ticket.id, Event.type == "csat_sent")
    ).one()
    if at is None:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
