"""handlers.py: what each command of the registry does: read its arguments, then apply them.

A `parse` function turns the words after the tag into a value or raises CommandError
(nothing is applied yet); `apply` makes the change through actions.py, which records
the events. The registry that names them is in commands.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from inboxd.errors import NotFound
from inboxd.models import (
    PRIORITIES,
    STATUSES,
    Agent,
    Message,
    ThreadKey,
    Ticket,
    utcnow,
)
from inboxd.tickets import actions
from inboxd.tickets.blocks import Actor, Block, CommandError
from inboxd.tickets.queries import get_ticket, match_agent
from inboxd.tickets.store import open_ticket, record_event
from inboxd.tickets.undo import undo_last_block

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,99}$")
_DELAY = re.compile(r"^(\d{1,4})([mhdw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def one(args: tuple[str, ...], what: str) -> str:
    if len(args) != 1:
        raise CommandError(f"expects one {what}")
    return args[0]


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    value = value.lower().replace("_", "-")
    value = {"onhold": "on-hold", "hold": "on-hold", "solve": "solved", "close": "closed"}.get(
        value, value
    )
    if value not in choices:
        raise CommandError(f"{what} must be one of {', '.join(choices)}, not {value!r}")
    return value


def find_agent(session: Session, who: str, actor: Actor) -> Agent | None:
    """An active agent by email or name; `me` is the actor. None when nobody matches."""
    who = who.strip()
    if who.lower() == "me":
        return session.get(Agent, actor.agent_id) if actor.agent_id else None
    return match_agent(session.exec(select(Agent).where(Agent.active)).all(), who)


def status_parse(block: Block, args: tuple[str, ...]) -> str:
    return _choice(one(args, "status"), STATUSES, "status")


def status_apply(block: Block, status: str) -> None:
    if actions.set_status(block.session, block.ticket, status, block.actor.email, block.id):
        block.changes.append(f"status -> {status}")


def assign_parse(block: Block, args: tuple[str, ...]) -> Agent | None:
    who = " ".join(args).strip()
    if not who:
        raise CommandError("expects an agent's email or name, me, or none")
    if who.lower() == "none":
        return None
    agent = find_agent(block.session, who, block.actor)
    if agent is None:
        raise CommandError(f"no active agent {who!r}")
    return agent


def assign_apply(block: Block, agent: Agent | None) -> None:
    if actions.set_assignee(block.session, block.ticket, agent, block.actor.email, block.id):
        block.changes.append(f"assignee -> {agent.email if agent else 'none'}")


def priority_parse(block: Block, args: tuple[str, ...]) -> str:
    return _choice(one(args, "priority"), PRIORITIES, "priority")


def priority_apply(block: Block, priority: str) -> None:
    if actions.set_priority(block.session, block.ticket, priority, block.actor.email, block.id):
        block.changes.append(f"priority -> {priority}")


def tags_parse(block: Block, args: tuple[str, ...]) -> list[str]:
    if not args:
        raise CommandError("expects one or more tags")
    tags = [a.lower().lstrip("#") for a in args]
    bad = [t for t in tags if not _TAG.match(t)]
    if bad:
        raise CommandError(f"tags are lowercase words; not {', '.join(bad)}")
    return tags


def tag_apply(block: Block, tags: list[str]) -> None:
    for tag in tags:
        if actions.add_tag(block.session, block.ticket, tag, block.actor.email, block.id):
            block.changes.append(f"tag +{tag}")


def untag_apply(block: Block, tags: list[str]) -> None:
    for tag in tags:
        if actions.remove_tag(block.session, block.ticket, tag, block.actor.email, block.id):
            block.changes.append(f"tag -{tag}")


def no_args(block: Block, args: tuple[str, ...]) -> None:
    if args:
        raise CommandError("takes no arguments")


def note_apply(block: Block, _: None) -> None:
    block.note = True


def public_apply(block: Block, _: None) -> None:
    block.public = True


def help_apply(block: Block, _: None) -> None:
    block.wants_help = True


def sla_apply(block: Block, _: None) -> None:
    # The explanation needs the SLA clock (workflow/), which answers this event by mail.
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "sla_requested",
        None,
        block.source,
        block=block.id,
    )
    block.changes.append("SLA explanation requested: it comes by mail")


def addresses_parse(block: Block, args: tuple[str, ...]) -> list[str]:
    if not args:
        raise CommandError("expects one or more email addresses")
    emails = [a.strip("<>,;").lower() for a in args]
    bad = [e for e in emails if not _ADDRESS.match(e)]
    if bad:
        raise CommandError(f"not an email address: {', '.join(bad)}")
    return emails


def cc_apply(block: Block, emails: list[str]) -> None:
    for email in emails:
        if actions.add_cc(block.session, block.ticket, email, block.actor.email, block.id):
            block.changes.append(f"cc +{email}")


def uncc_apply(block: Block, emails: list[str]) -> None:
    for email in emails:
        if actions.remove_cc(block.session, block.ticket, email, block.actor.email, block.id):
            block.changes.append(f"cc -{email}")


def _ticket_arg(block: Block, args: tuple[str, ...]) -> Ticket:
    raw = one(args, "ticket number").lstrip("#")
    if not raw.isdigit():
        raise CommandError(f"expects a ticket number, not {raw!r}")
    try:
        target = get_ticket(block.session, int(raw))
    except NotFound:
        raise CommandError(f"no ticket {raw}") from None
    if target.id == block.ticket.id:
        raise CommandError("is this very ticket")
    return target


def merge_parse(block: Block, args: tuple[str, ...]) -> Ticket:
    target = _ticket_arg(block, args)
    if target.merged_into is not None:
        raise CommandError(f"ticket {target.id} was itself merged into {target.merged_into}")
    return target


def merge_apply(block: Block, target: Ticket) -> None:
    actions.merge_tickets(block.session, block.ticket, target, block.actor.email, block.id)
    block.changes.append(f"merged into #{target.id}")
    block.notable = True


def spam_apply(block: Block, _: None) -> None:
    actions.mark_spam(block.session, block.ticket, block.actor.email, block.id)
    block.changes.append("marked as spam and closed")
    block.notable = True


def subject_parse(block: Block, args: tuple[str, ...]) -> str:
    subject = " ".join(args).strip()
    if not subject:
        raise CommandError("expects the new subject")
    return subject[:500]


def subject_apply(block: Block, subject: str) -> None:
    if actions.set_subject(block.session, block.ticket, subject, block.actor.email, block.id):
        block.changes.append(f"subject -> {subject}")


def team_parse(block: Block, args: tuple[str, ...]) -> str | None:
    """A configured team (SPEC §10.9), or with none configured any lowercase word: a
    typo must not open a queue nobody watches (issue 16)."""
    if not args:
        raise CommandError("expects a team name, or none")
    team = one(args, "team name (one word)").lower()
    if team == "none":
        return None
    if block.teams:
        if team not in block.teams:
            raise CommandError(f"no team {team!r}; teams are {', '.join(block.teams)} (or none)")
    elif not _TAG.match(team):
        raise CommandError(f"{team!r} is not a team name: expected a lowercase word")
    return team


def team_apply(block: Block, team: str | None) -> None:
    if actions.set_team(block.session, block.ticket, team, block.actor.email, block.id):
        block.changes.append(f"team -> {team or 'none'}")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """`2026-12-01` (that day, 09:00 UTC) or a delay `3d`, `4h`, `30m`, `2w`."""
    now = now or utcnow()
    text = text.strip().lower()
    if m := _DELAY.match(text):
        return now + timedelta(**{_UNIT[m.group(2)]: int(m.group(1))})
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(hour=9, tzinfo=UTC)
    except ValueError:
        raise CommandError(
            f"expects a date like 2026-12-01 or a delay like 3d, not {text!r}"
        ) from None
    if day <= now:
        raise CommandError(f"{text} is not in the future")
    return day


def due_parse(block: Block, args: tuple[str, ...]) -> datetime:
    return parse_when(one(args, "date or delay"))


def due_apply(block: Block, when: datetime) -> None:
    session, ticket, who = block.session, block.ticket, block.actor.email
    actions.set_status(session, ticket, "pending", who, block.id)
    if actions.set_due(session, ticket, when, who, block.id):
        block.changes.append(f"pending until {when:%Y-%m-%d %H:%M} UTC")


def _message_about(block: Block) -> Message:
    if block.about_message_pk is None:
        raise CommandError("works only in a reply to a notification about a message")
    message = block.session.get(Message, block.about_message_pk)
    if message is None or message.ticket_id != block.ticket.id:
        raise CommandError("the message this reply is about is no longer on this ticket")
    return message


def split_parse(block: Block, args: tuple[str, ...]) -> Message:
    no_args(block, args)
    return _message_about(block)


def split_apply(block: Block, message: Message) -> None:
    new = open_ticket(block.session, message.subject or block.ticket.subject, message.from_email)
    _move(block, message, new)
    block.changes.append(f"message split out into #{new.id}")


def move_parse(block: Block, args: tuple[str, ...]) -> tuple[Message, Ticket]:
    return _message_about(block), _ticket_arg(block, args)


def move_apply(block: Block, value: tuple[Message, Ticket]) -> None:
    message, target = value
    _move(block, message, target)
    block.changes.append(f"message moved to #{target.id}")


def _move(block: Block, message: Message, target: Ticket) -> None:
    assert target.id is not None
    record_event(
        block.session,
        block.ticket,
        block.actor.email,
        "moved_out",
        str(message.id),
        str(target.id),
        block=block.id,
    )
    record_event(
        block.session,
        target,
        block.actor.email,
        "moved_in",
        str(block.ticket.id),
        str(message.id),
        block=block.id,
    )
    message.ticket_id = target.id
    block.session.add(message)
    if message.message_id:
        # Replies to the moved message follow it to its new ticket.
        for key in block.session.exec(
            select(ThreadKey).where(
                ThreadKey.msgid == message.message_id, ThreadKey.ticket_id == block.ticket.id
            )
        ):
            key.ticket_id = target.id
            block.session.add(key)
    block.notable = True


def undo_apply(block: Block, _: None) -> None:
    for line in undo_last_block(block.session, block.ticket, block.actor, block.id):
        block.changes.append(line)
