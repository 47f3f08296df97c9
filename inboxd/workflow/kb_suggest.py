"""kb_suggest.py: self-service. Articles in the acknowledgement, and the customer's `#solved`.

SPEC §10.6. The acknowledgement of a new ticket lists up to `[kb] suggestions` public
articles whose relevance to the customer's first message reaches `[kb] min_score`, in the
customer's language where the article has that translation, and says to reply `#solved`
if one answered the question. What was suggested is an event (`kb_suggested`), and a
solve by the customer is another (`self_service`, with the article), which the report's
deflection figure reads (workflow/timelines.py).

Never for a follow-up of a closed ticket, automatic mail, a null or ambiguous sender or a
ticket an agent opened: `notify.acknowledge` sends no acknowledgement to those at all,
and this module adds nothing to one for a follow-up. Called by the pipeline, inside its
transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from sqlmodel import Session, col, select

from inboxd import languages
from inboxd.agents import notify
from inboxd.config import Config
from inboxd.mail.classify import Classification
from inboxd.mail.command_tags import extract_tags
from inboxd.mail.parse import ParsedMessage
from inboxd.models import Event, Message, Ticket
from inboxd.render import localized
from inboxd.runtime import Runtime
from inboxd.tickets import actions, store
from inboxd.tickets.threader import ThreadDecision
from inboxd.workflow.kb_search import Hit, KbIndex, open_index, pick_translation

# How much of the first message is read for the question: the subject and the start.
_QUESTION_CHARS = 2000


# How often, at most, the daemon looks whether an article file changed.
CHECK_SECONDS = 2.0


def kb_index(config: Config, *, rebuild: bool = False, max_age: float = 0.0) -> KbIndex:
    """The KB of this configuration, indexed (kept in memory and in data_dir)."""
    cache = config.data_dir / "kb-index.json"
    return open_index(config.kb_dir, cache, rebuild=rebuild, max_age=max_age)


def article_url(config: Config, slug: str, language: str, token: str = "") -> str:
    """The article's public page; with `token` (see `solve_token`), the page offers
    "this answered my question" for the ticket it was suggested on."""
    url = f"{config.inboxd.web_base_url.rstrip('/')}/kb/{slug}?lang={language}"
    return f"{url}&t={token}" if token else url


def solve_token(secret: bytes, ticket_id: int, slug: str) -> str:
    """Names one ticket and one suggested article, unguessably: '42-<mac>'."""
    mac = hmac.new(secret, f"kb-solve:{ticket_id}:{slug}".encode(), hashlib.sha256)
    return f"{ticket_id}-{mac.hexdigest()[:24]}"


def read_solve_token(secret: bytes, token: str, slug: str) -> int | None:
    """The ticket a `solve_token` names for this slug, or None for any other text."""
    number, _, _mac = token.partition("-")
    if not number.isdigit() or len(number) > 10:
        return None
    ticket_id = int(number)
    expected = solve_token(secret, ticket_id, slug)
    return ticket_id if hmac.compare_digest(expected, token) else None


def article_text(config: Config) -> Callable[[str, str | None, str], str | None]:
    """What `#kb SLUG [LANGUAGE]` inserts into an agent's reply (Runtime.kb_article_text):
    a public article's title, summary and link, in the language asked for, else the
    language of the ticket's subject where the article has it."""

    def text(slug: str, language: str | None, subject: str) -> str | None:
        index = kb_index(config, max_age=CHECK_SECONDS)
        public = [a for a in index.translations(slug) if a.public]
        article = pick_translation(public, language or languages.script_language(subject))
        if article is None:
            return None
        url = article_url(config, article.slug, article.language)
        return f"{article.title}\n{article.summary}\n{url}"

    return text


def suggest(config: Config, question: str, language: str | None = None) -> list[Hit]:
    """The public articles to offer for a question: one translation per article (the
    customer's language where it exists), best first, each above `min_score`."""
    cfg = config.kb
    if not cfg.enabled or cfg.suggestions <= 0:
        return []
    index = kb_index(config, max_age=CHECK_SECONDS)
    hits = index.search(question, limit=50, public_only=True)
    # Without a language of its own (no CJK), a question speaks the language of the
    # article it matched best: a German question matches German text.
    language = language or languages.script_language(question)
    if language is None and hits:
        language = hits[0].article.language
    chosen: list[Hit] = []
    seen: set[str] = set()
    for hit in hits:
        if hit.score < cfg.min_score or hit.article.slug in seen:
            continue
        seen.add(hit.article.slug)
        public = [a for a in index.translations(hit.article.slug) if a.public]
        article = pick_translation(public, language) or hit.article
        chosen.append(Hit(article, hit.score))
        if len(chosen) >= cfg.suggestions:
            break
    return chosen


def acknowledge(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    msg: ParsedMessage,
    kind: Classification,
    envelope_from: str | None = None,
) -> str | None:
    """The acknowledgement of a new ticket, with the KB's suggestions in it."""

    def suggestions(session: Session, ticket: Ticket, msg: ParsedMessage, language: str) -> str:
        if ticket.followup_of is not None:
            return ""
        question = f"{ticket.subject}\n{msg.text}"[:_QUESTION_CHARS]
        # The articles in the acknowledgement's language; an English one (also what a
        # customer of unknown language gets) leaves it to the question's own script.
        hits = suggest(rt.config, question, None if language == languages.DEFAULT else language)
        if not hits:
            return ""
        store.record_event(
            session, ticket, "system", "kb_suggested", None, ",".join(h.article.key for h in hits)
        )
        return localized(
            "email/kb_suggestions.txt.j2",
            language,
            {
                "articles": [
                    {
                        "title": h.article.title,
                        "summary": h.article.summary,
                        "url": article_url(
                            rt.config,
                            h.article.slug,
                            h.article.language,
                            solve_token(rt.secret_key, ticket.id or 0, h.article.slug),
                        ),
                    }
                    for h in hits
                ],
            },
            rt.config.inboxd.templates_dir,
        ).text

    return notify.acknowledge(
        session, rt, ticket, msg, kind, extra=suggestions, envelope_from=envelope_from
    )


def solved_by_reply(
    session: Session,
    ticket: Ticket,
    msg: ParsedMessage,
    decision: ThreadDecision,
    message_pk: int,
) -> bool:
    """The requester's `#solved` in reply to an acknowledgement that suggested articles:
    the ticket is solved as self-service and True comes back (no agent is told).

    Only the verified requester counts: the reply must prove it received our mail (a
    customer reply token, or a Message-ID inboxd generated) and come from the requester,
    so a stranger who copies the subject, or forges `From:` alone, solves nothing. Nor
    does it once an agent has replied in public (then it is not self-service).
    `#solved 2` or `#solved SLUG` names the article; plain `#solved` means the first.
    """
    if decision.ticket_id is None or not decision.may_add_participants:
        return False
    if decision.token_agent_id is not None or msg.sender is None or msg.sender_ambiguous:
        return False
    if msg.sender.email != ticket.requester or ticket.status in ("solved", "closed"):
        return False
    message = session.get(Message, message_pk)
    if message is None or message.kind != "customer":
        return False
    calls, _rest = extract_tags(message.text or "", max_lines=5)
    call = next((c for c in calls if c.name == "solved"), None)
    if call is None:
        return False
    suggested = _suggested(session, ticket)
    if not suggested or _answered_by_agent(session, ticket):
        return False
    article = _named(suggested, call.args[0] if call.args else "")
    actions.set_status(session, ticket, "solved", msg.sender.email)
    store.record_event(
        session, ticket, msg.sender.email, "self_service", "reply", article, message_pk=message_pk
    )
    return True


def solved_on_page(session: Session, ticket_id: int, slug: str) -> bool:
    """ "This answered my question" on the article page of a suggestion: the ticket is
    solved as self-service, as by `#solved`. False when there is nothing to do (the
    ticket is solved already, or the article was not suggested on it)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.merged_into is not None or ticket.status in ("solved", "closed"):
        return False
    key = next((k for k in _suggested(session, ticket) if k.split(":", 1)[0] == slug), None)
    if key is None or _answered_by_agent(session, ticket):
        return False
    actions.set_status(session, ticket, "solved", ticket.requester)
    store.record_event(session, ticket, ticket.requester, "self_service", "page", key)
    return True


def article_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per article ('slug:language'): how many acknowledgements suggested it, and how
    many tickets its reader solved with it (by `#solved` or on its page). From events."""
    counts: dict[str, dict[str, int]] = {}
    rows = session.exec(
        select(Event.type, Event.to_value).where(
            col(Event.type).in_(("kb_suggested", "self_service"))
        )
    )
    for type_, value in rows:
        for key in (value or "").split(",") if type_ == "kb_suggested" else [value or ""]:
            if key:
                row = counts.setdefault(key, {"suggested": 0, "solved": 0})
                row["suggested" if type_ == "kb_suggested" else "solved"] += 1
    return counts


def _answered_by_agent(session: Session, ticket: Ticket) -> bool:
    """Self-service is a solve no agent had a hand in: after a public agent reply, the
    customer's `#solved` is only text for that agent to read."""
    replied = session.exec(
        select(Message.id).where(
            Message.ticket_id == ticket.id, Message.direction == "out", Message.kind == "reply"
        )
    ).first()
    return replied is not None


def _suggested(session: Session, ticket: Ticket) -> list[str]:
    """The article keys the ticket's acknowledgement suggested ('slug:language')."""
    row = session.exec(
        select(Event.to_value)
        .where(Event.ticket_id == ticket.id, Event.type == "kb_suggested")
        .order_by(col(Event.id))
    ).first()
    return [k for k in (row or "").split(",") if k]


def _named(suggested: list[str], arg: str) -> str:
    if arg.isdigit() and 1 <= int(arg) <= len(suggested):
        return suggested[int(arg) - 1]
    for key in suggested:
        if key.split(":", 1)[0] == arg.lower():
            return key
    return suggested[0]
