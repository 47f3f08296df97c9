"""agentmail.py: what happens when an agent answers a notification by email (SPEC §6).

Order: verify the sender (reply token and/or trusted Authentication-Results), take the
command block off the top of the new text, run it through commands.run_block (atomic),
then either relay the rest to the customer, keep it as an internal note, or hold the
whole mail and tell the agent why. Nothing from an unverified or failed block reaches a
customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from inboxd.agents import notify, replies
from inboxd.agents.operations import desk_options
from inboxd.agents.trust import authentication_verdict
from inboxd.errors import Forbidden, InboxdError
from inboxd.mail.command_tags import extract_tags
from inboxd.mail.parse import ParsedMessage, parse_message
from inboxd.mail.quotes import reply_text as new_text
from inboxd.models import Agent, Message, Outbound, Ticket
from inboxd.queues.outbox import FilePart
from inboxd.runtime import Runtime
from inboxd.tickets import store
from inboxd.tickets.commands import Actor, BlockResult, help_table, run_block


@dataclass(frozen=True)
class Verification:
    verified: bool
    reason: str


def verify(
    rt: Runtime, msg: ParsedMessage, agent: Agent, token_agent_id: int | None
) -> Verification:
    """SPEC §6 Trust: (a) the agent's own reply token and From, (b) our MX's verdict.
    Both with require_authentication; (b) when our MX is trusted; else either."""
    by_token = token_agent_id is not None and token_agent_id == agent.id
    domain = agent.email.rpartition("@")[2]
    auth = authentication_verdict(msg.headers, rt.config.trust.trusted_authserv_ids, domain)
    trust = rt.config.trust
    if trust.require_authentication:
        if by_token and auth.passed:
            return Verification(True, "reply token and " + auth.reason)
        missing = "no reply token of this agent" if not by_token else auth.reason
        return Verification(False, missing)
    if trust.trusted_authserv_ids:
        # Issue 19: a forwarded notification answered with a forged From: of its agent
        # ran commands on the token alone. Where our MX authenticates mail, only its
        # verdict counts: (b) is needed, the token alone no longer suffices.
        if auth.passed:
            return Verification(True, auth.reason)
        return Verification(False, f"{auth.reason} (the reply token alone is not enough here)")
    if by_token:
        return Verification(True, "reply token")
    if auth.passed:
        return Verification(True, auth.reason)
    return Verification(False, f"not sent to this agent's reply token, and {auth.reason}")


def replied_notification(session: Session, msg: ParsedMessage) -> Outbound | None:
    """The notification this mail answers (by In-Reply-To, else References)."""
    ids = [*msg.in_reply_to, *reversed(msg.references)]
    if not ids:
        return None
    rows = session.exec(select(Outbound).where(col(Outbound.message_id).in_(ids[:50]))).all()
    by_id = {r.message_id: r for r in rows}
    return next((by_id[i] for i in ids if i in by_id), None)


def handle(
    session: Session,
    rt: Runtime,
    ticket: Ticket,
    agent: Agent,
    msg: ParsedMessage,
    message: Message,
    token_agent_id: int | None,
    files: list[FilePart],
    *,
    vouched_by: str = "",
) -> None:
    """Decide what the agent's stored mail (`message`) becomes, and act on it.
    `vouched_by` is the signed-in agent who released a held mail: it stands for (a)/(b)."""
    assert ticket.id is not None
    if vouched_by:
        check = Verification(True, f"released by {vouched_by}")
    else:
        check = verify(rt, msg, agent, token_agent_id)
    if not check.verified:
        _hold(session, message, f"unverified: {check.reason}")
        if notify.recently_mailed(session, ticket.id, agent.email, "warn:spoof"):
            # One warning an hour is enough; an agent's out-of-office answering each
            # warning in the agent's name was a loop (issue 19).
            return
        notify.mail_agent(
            session,
            rt,
            ticket,
            agent.email,
            "Mail in your name was held",
            "email/spoof_warning.txt.j2",
            {"agent_email": agent.email, "ticket_id": ticket.id, "reason": check.reason},
            "warn:spoof",
        )
        return
    # A reply of nothing but the quoted notification is stored with its quote (quotes.py)
    # but has nothing to relay or run.
    own = message.text if new_text(msg.text, msg.html, keep_quote_only=False) else ""
    # SPEC §6: only the plain-text part is read for commands; an HTML-only mail has none.
    calls, reply_text = ([], own) if msg.text_from_html else extract_tags(own)
    notification = replied_notification(session, msg)
    about = notification.about_message_pk if notification is not None else None
    result: BlockResult | None = None
    if calls:
        result = run_block(
            session,
            ticket,
            Actor(agent.email, agent.id, agent.role),
            calls,
            source="email",
            about_message_pk=about,
            **desk_options(rt),
        )
        if not result.ok:
            _hold(session, message, "invalid command block")
            notify.mail_agent(
                session,
                rt,
                ticket,
                agent.email,
                "Commands not applied",
                "email/command_errors.txt.j2",
                {"ticket_id": ticket.id, "errors": result.errors},
                "receipt:error",
                about,
            )
            return
        if result.inserted_text:
            reply_text = (reply_text.rstrip() + "\n\n" + result.inserted_text).strip()
        if result.wants_help:
            notify.mail_agent(
                session,
                rt,
                ticket,
                agent.email,
                "Commands",
                "email/command_help.txt.j2",
                {"table": help_table()},
                "receipt:help",
                about,
            )
    # A command-only mail (#help, #status …) is kept as its command lines: a short note,
    # not the whole quoted notification it was written under (issue 16).
    message.text = reply_text or "\n".join(call.line for call in calls)
    public_default = notify.replies_public(session, notification) if notification else True
    public = (public_default or (result is not None and result.public)) and not (
        result and result.note
    )
    # The target may have changed: #merge moved this ticket's messages elsewhere.
    target = session.get(Ticket, message.ticket_id) or ticket
    sent = False
    if reply_text.strip() and public and not target.spam:
        message.kind, message.direction = "reply", "out"
        session.add(message)
        session.flush()
        replies.relay_reply(session, rt, target, agent, message, files)
        sent = True
    else:
        message.kind = "note"
        session.add(message)
        session.flush()
        if reply_text.strip():
            store.record_event(session, target, agent.email, "note", None, "email", message=message)
            others = notify.recipients(session, rt, target, "note", exclude=agent.email)
            notify.notify_agents(
                session,
                rt,
                target,
                message,
                "notify:note",
                others,
                f"{agent.name or agent.email} added an internal note.",
            )
    if result is not None and result.changes and (result.notable or agent.receipts):
        notify.mail_agent(
            session,
            rt,
            target,
            agent.email,
            "Done",
            "email/receipt.txt.j2",
            {"ticket_id": target.id, "changes": result.changes, "sent": sent},
            "receipt",
            about,
        )
    if result is not None:
        notify.after_commands(session, rt, target, agent.email, result.block_id)
    else:
        notify.after_assignment(session, rt, target, agent.email)


def _hold(session: Session, message: Message, why: str) -> None:
    message.kind = "held"
    message.flags = {**message.flags, "held": why}
    session.add(message)


def release_held(session: Session, rt: Runtime, message: Message, by: Agent) -> None:
    """Run a mail held as unverified as if it had been verified (SPEC §6 Trust), because
    the agent it claims to be from, signed in to the web, or an admin says it is theirs.
    Its commands run and its text is relayed or kept as a note, exactly as by mail."""
    if message.kind != "held" or not str(message.flags.get("held", "")).startswith("unverified"):
        raise InboxdError("only a mail held as unverified can be released")
    if by.role != "admin" and by.email.lower() != message.from_email.lower():
        raise Forbidden("only the agent the mail is from, or an admin, can release it")
    agent = session.exec(select(Agent).where(Agent.email == message.from_email)).first()
    if agent is None or not agent.active:
        raise InboxdError(f"{message.from_email} is no longer an active agent")
    raw = store.load_raw(session, message.raw_sha256) if message.raw_sha256 else None
    if raw is None:
        raise InboxdError("the original mail is not stored, so it cannot be run again")
    msg = parse_message(raw)
    ticket = session.get(Ticket, message.ticket_id)
    assert ticket is not None and ticket.id is not None
    message.flags = {k: v for k, v in message.flags.items() if k != "held"} | {
        "released_by": by.email
    }
    store.record_event(session, ticket, by.email, "held_released", message=message)
    files = [FilePart(a.filename, a.content_type, a.data) for a in msg.attachments if not a.inline]
    handle(session, rt, ticket, agent, msg, message, None, files, vouched_by=by.email)
