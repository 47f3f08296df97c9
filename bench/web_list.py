"""Web list latency: the web view's ticket-list page at 100,000 tickets, against /healthz.

    python bench/web_list.py [--tickets N] [--requests R] [--budget S]
                             [--database-url URL] [--keep DIR]

Builds a fresh data dir and config (SQLite in it by default; with --database-url, a fresh
schema in that PostgreSQL database, dropped at the end), opens the runtime (migrations,
search indexes included), then bulk-inserts N tickets with SQLAlchemy Core executemany,
CHUNK tickets to a transaction:

  * tickets spread over two years, ids in creation order; status depends on age (recent
    tickets are new/open/pending, old ones mostly solved/closed), priorities
    low/normal/high/urgent 15/60/20/5 %, ~35 % unassigned and the rest spread unevenly
    over 8 agents, teams, ~20 % tagged (1-2 tags), 1 % merged into an older ticket;
  * requesters from a small pool of regulars and a large pool of one-off customers, a
    "requester" participant row each, a CC participant on ~10 %;
  * 1-3 messages a ticket (customer, agent reply, customer), a few hundred characters of
    helpdesk text each, ~10 % of tickets in Chinese or Japanese, a reply's `body` with a
    short quote; a "created" event a ticket and a "message" event a message;
  * words to search for: COMMON_WORD in one message of ~1 % of tickets, RARE_WORD in
    ~0.01 %, CJK_PHRASE in ~0.5 % (Chinese tickets only). They occur nowhere else, so
    the number of hits is known.

Migration 0004's search indexes (SQLite's FTS5 triggers, PostgreSQL's trigram GIN
indexes) are taken away for the load and rebuilt at its end, as 0004 builds them over
existing mail (see search_index_deferred). The build time is printed, with its share.

Then create_app(rt, Metrics()) is served by uvicorn in a thread of this process on a free
127.0.0.1 port, and one keep-alive httpx client, signed in as ME (a session cookie from
signin.open_session), requests every case R times after WARMUP untimed requests, in
interleaved rounds so that the drift of this noisy machine hits every case alike:

  * baseline: GET /healthz, the same server's HTTP + middleware + framework overhead
    with one trivial SQL statement;
  * the list `/`: default, page 200 (offset 9,950), status=open, assignee=mine,
    assignee=unassigned, tag, sort=priority, q= COMMON_WORD / RARE_WORD / CJK_PHRASE;
  * a ticket page /tickets/{id} (three messages, a requester with other tickets).

A case whose timed requests took --budget seconds gets no more after MIN_REQUESTS (so
a multi-second page cannot make the run take an hour); the n column says how many it got.
The table prints per case the tickets the page says match, n, p50 and p95 in ms, p50
over the baseline's p50, and "SQL p50": list_tickets + count_tickets for the same filter
in this process without HTTP or rendering (fewer repetitions). Below it, the whole SQL of
the default page's handler (session lookup, list, tickets_json, count, count_by_status,
list_agents). The client runs in the server's process, so they share one GIL; the
baseline pays that too.

Every page is checked: status 200, and for list pages the total it shows against the
generator's own count. Mismatches are printed and make the exit status 1; timings never
do (a benchmark is not a test). Everything lives under one temporary root (default
$TMPDIR), removed at the end unless --keep DIR is given (a PostgreSQL schema is dropped
either way).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import random
import re
import socket
import statistics
import string
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Shared with the ingest benchmark (bench/ is on sys.path when this file is run).
from ingest import mount_of, work_dir

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHUNK = 5_000
WARMUP = 3  # untimed requests per case first, or fewer once they took WARMUP_BUDGET s
WARMUP_BUDGET = 2.0
MIN_REQUESTS = 5  # a case gets at least these, more only while under --budget seconds
SEED = 20261123
SUPPORT = "support@example.com"
ME = "alice@example.com"
# (email, name, role, team, share of the assigned tickets)
AGENTS = [
    (ME, "Alice Martin", "admin", "support", 12),
    ("bob@example.com", "Bob Keller", "agent", "support", 20),
    ("carol@example.com", "Carol Nguyen", "agent", "billing", 18),
    ("dave@example.com", "Dave Okafor", "agent", "tech", 15),
    ("erin@example.com", "Erin Sato", "agent", "tech", 12),
    ("frank@example.com", "Frank Dubois", "agent", "billing", 10),
    ("grace@example.com", "Grace Li", "agent", "sales", 8),
    ("heidi@example.com", "Heidi Berg", "agent", "support", 5),
]
TAG = "refund"  # the tag the tag case filters on
COMMON_WORD = "kumquat"  # in ~1 % of tickets
RARE_WORD = "xylophone"  # in ~0.01 % of tickets
CJK_PHRASE = "发票抬头"  # "invoice title", in ~0.5 % of tickets

# --------------------------------------------------------------------------- text


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "anna ben chloe david emma felix gina hugo ines jonas kai lena marc nina omar paula "
    "quinn rosa sam tara umar vera will xena yusuf zoe wei yuki hana min jun li mei"
)
LAST = _words(
    "smith mueller garcia rossi dubois kowalski jensen novak silva tanaka wang chen kim "
    "park ivanov schmidt martin brown lopez moreau"
)
DOMAINS = _words(
    "gmail.com outlook.com yahoo.co.jp qq.com example.org acme-corp.com web.de "
    "mail.ru icloud.com contoso.example"
)
DEVICES = ["iPhone 13", "Pixel 7", "Galaxy S22", "iPad Air", "a Windows 11 laptop"]
CITIES = ["Lyon", "Leeds", "Graz", "Osaka", "Porto", "Austin", "Gdansk"]

EN_SUBJECTS = [
    "Order #{order} not delivered",
    "Refund request for invoice {inv}",
    "Cannot log in",
    "App crashes on {device}",
    "Change billing address",
    "Question about the annual plan",
    "Damaged item received",
    "Cancel my subscription",
    "Discount code {code} not working",
    "Export to CSV is empty",
    "Charged twice",
    "Need access for my team",
    "Where is my parcel?",
    "Password reset email never arrives",
]
EN_CUSTOMER = [
    "I placed order #{order} on {date} and it still has not arrived.",
    "The tracking page says the parcel is in transit, but nothing has moved for a week.",
    "I was charged twice for invoice {inv}; could you refund the duplicate payment?",
    "Since this morning I cannot log in: the password reset email never comes.",
    "The app crashes when I open the settings page on my {device}.",
    "Could you please update the billing address on my account to {city}?",
    "Our team of {n} people needs access to the shared workspace.",
    "I attached a screenshot of the error message I get.",
    "The export to CSV produces an empty file for last month.",
    "We would like to upgrade to the annual plan if there is a discount.",
    "Is there a way to change the email address my account is registered with?",
    "The item arrived damaged: the box was crushed and the screen is cracked.",
    "Please cancel my subscription at the end of the current period.",
    "I have been waiting for an answer for three days now.",
    "Unfortunately the problem came back after yesterday's update.",
    "Could someone call me back at +49 30 {n}{order}? It is fairly urgent.",
    "The discount code {code} is rejected at checkout.",
    "My colleague has the same issue on her account, by the way.",
    "Thanks for the quick reply, that fixed it.",
]
EN_AGENT = [
    "Thanks for reaching out, and sorry for the trouble.",
    "I have looked into order #{order}: the carrier lost track of it, so we ship a new one today.",
    "I have issued a refund of {amount} EUR; it should appear within five business days.",
    "Could you tell me which browser and version you are using?",
    "I have reset your login; please try the link in the new email within 15 minutes.",
    "The billing address is updated, and the next invoice will show it.",
    "Our developers know about this crash and a fix ships with the next release.",
    "You can change the address under Settings, then Account, then Email.",
    "I have added {n} seats to your workspace; the invitations are on their way.",
    "Let me know if there is anything else I can do.",
]
EN_OPEN = ["Hi,", "Hello,", "Hi there,", "Good morning,", "Dear support team,", "Hey,"]
EN_CLOSE = ["Thanks,", "Best regards,", "Cheers,", "Kind regards,", "Thank you!"]
COMMON_SENTENCE = "Also, the {word} syrup in that order leaked all over the box."
RARE_SENTENCE = "P.S. the {word} I ordered as a gift is missing its mallets."

ZH_SUBJECTS = ["订单{order}未收到", "退款申请", "无法登录账户", "发票问题", "商品破损"]
ZH_CUSTOMER = [
    "您好，我在{date}下的订单{order}至今还没有收到。",
    "物流信息显示包裹一直在运输中，已经一个星期没有更新了。",
    "我的账户被重复扣款了，请帮我退款。",
    "今天早上开始我无法登录，重置密码的邮件一直收不到。",
    "请问可以修改账户的收货地址吗？",
    "商品到货时外包装破损，屏幕也裂了。",
    "请在本期结束时取消我的订阅。",
    "谢谢你们的快速回复，问题已经解决了。",
]
ZH_AGENT = [
    "您好，感谢您的耐心等待。",
    "我们已经为您办理了{amount}元的退款，预计五个工作日内到账。",
    "新的包裹今天会发出，运单号稍后通过邮件发送给您。",
    "如有其他问题，请随时联系我们。",
]
ZH_PHRASE_SENTENCE = "另外，" + CJK_PHRASE + "需要改成我们公司的全称，谢谢。"
JA_SUBJECTS = ["ご注文の商品が届きません", "請求書について", "ログインできません"]
JA_CUSTOMER = [
    "お世話になっております。",
    "注文番号{order}の商品がまだ届いていません。",
    "ログインできなくなりました。パスワード再設定のメールが届きません。",
    "請求書の金額が間違っているようです。ご確認をお願いします。",
    "至急ご対応いただけますと幸いです。",
    "よろしくお願いいたします。",
]
JA_AGENT = [
    "お問い合わせいただきありがとうございます。",
    "ご不便をおかけして申し訳ございません。",
    "{amount}円の返金手続きを行いました。",
    "引き続きよろしくお願いいたします。",
]
TAGS = ["billing", "refund", "bug", "feature-request", "vip", "outage", "login", "shipping"]
TAG_WEIGHTS = [20, 15, 18, 8, 5, 4, 15, 15]


_FIELDS: dict[str, Callable[[random.Random, datetime], object]] = {
    "order": lambda rng, day: 100_000 + int(rng.random() * 900_000),
    "inv": lambda rng, day: f"{day:%Y}-{1 + int(rng.random() * 9998):04d}",
    "date": lambda rng, day: f"{day:%Y-%m-%d}",
    "device": lambda rng, day: DEVICES[int(rng.random() * len(DEVICES))],
    "city": lambda rng, day: CITIES[int(rng.random() * len(CITIES))],
    "code": lambda rng, day: f"SAVE{10 + int(rng.random() * 50)}",
    "n": lambda rng, day: 2 + int(rng.random() * 38),
    "amount": lambda rng, day: 5 + int(rng.random() * 895),
}


@functools.cache
def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def fill(template: str, rng: random.Random, day: datetime) -> str:
    """The template with fresh random order numbers, amounts, ... (only those it uses)."""
    names = _fields(template)
    if not names:
        return template
    return template.format_map({name: _FIELDS[name](rng, day) for name in names})


# --------------------------------------------------------------------------- data


@dataclass
class Built:
    """What the generator made, to check the pages' totals against."""

    tickets: int = 0
    messages: int = 0
    live: int = 0  # not merged: what the list shows
    expected: dict[str, int] = field(default_factory=dict)
    ticket_page_id: int = 0
    seconds: float = 0.0
    index_seconds: float = 0.0  # of `seconds`: building the search indexes after the load


def people(rng: random.Random) -> tuple[list[str], list[str]]:
    """A small pool of regulars (many tickets each) and a large pool of one-off customers."""

    def address(i: int) -> str:
        return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}@{rng.choice(DOMAINS)}"

    return [address(i) for i in range(3_000)], [address(i) for i in range(3_000, 63_000)]


def build(rt: Any, n: int, seed: int) -> Built:
    """Bulk-insert n tickets with their messages, participants, tags and events."""
    from sqlmodel import SQLModel

    tables = SQLModel.metadata.tables
    rng = random.Random(seed)
    regulars, others = people(rng)
    start = time.perf_counter()
    with rt.engine.connect() as conn:
        agent_ids = dict(conn.exec_driver_sql("SELECT email, id FROM agent").all())
    assignees = [agent_ids[a[0]] for a in AGENTS]
    weights = [a[4] for a in AGENTS]
    me_id = agent_ids[ME]
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(days=730)
    span = (now - first).total_seconds()
    counts = dict.fromkeys(
        ("live", "open", "mine", "unassigned", "tag", "common", "rare", "cjk"), 0
    )
    built = Built(tickets=n)
    message_id = 0
    with search_index_deferred(rt) as deferred:
        for chunk_start in range(1, n + 1, CHUNK):
            rows: dict[str, list[dict[str, Any]]] = {
                k: [] for k in ("ticket", "participant", "ticket_tag", "message", "event")
            }
            for tid in range(chunk_start, min(n, chunk_start + CHUNK - 1) + 1):
                created = first + timedelta(seconds=span * (tid - 1) / n + rng.uniform(0, span / n))
                updated = min(now, created + timedelta(hours=rng.expovariate(1 / 48)))
                age_days = (now - updated).days
                if age_days < 3:
                    status = rng.choices(["new", "open", "pending", "on-hold"], [30, 45, 20, 5])[0]
                elif age_days < 30:
                    status = rng.choices(
                        ["open", "pending", "on-hold", "solved", "closed"], [25, 15, 5, 40, 15]
                    )[0]
                else:
                    status = rng.choices(["open", "on-hold", "solved", "closed"], [2, 1, 40, 57])[0]
                merged = tid > 100 and rng.random() < 0.01
                if merged:
                    status = "closed"
                assignee = (
                    None
                    if status == "new" or rng.random() < 0.30
                    else rng.choices(assignees, weights)[0]
                )
                language = rng.choices(["en", "zh", "ja"], [90, 5, 5])[0]
                requester = rng.choice(regulars) if rng.random() < 0.5 else rng.choice(others)
                if language == "en":
                    subject = fill(rng.choice(EN_SUBJECTS), rng, created)
                elif language == "zh":
                    subject = fill(rng.choice(ZH_SUBJECTS), rng, created)
                else:
                    subject = fill(rng.choice(JA_SUBJECTS), rng, created)
                n_messages = rng.choices([1, 2, 3], [50, 35, 15])[0]
                agent_email = AGENTS[assignees.index(assignee)][0] if assignee else AGENTS[1][0]
                agent_name = AGENTS[assignees.index(assignee)][1] if assignee else AGENTS[1][1]
                # Distinctive words (English ones in English tickets' first message).
                common = language == "en" and rng.random() < 0.0111
                rare = language == "en" and rng.random() < 0.000111
                cjk = language == "zh" and rng.random() < 0.10
                times = sorted(
                    [created, updated]
                    + [created + (updated - created) * rng.random() for _ in range(n_messages - 2)]
                )[:n_messages]
                if n_messages == 1:
                    times = [created]
                first_response = None
                previous = ""
                for k in range(n_messages):
                    message_id += 1
                    from_agent = k == 1
                    text = message_text(rng, language, from_agent, times[k], agent_name)
                    if k == 0 and common:
                        text = add_sentence(text, COMMON_SENTENCE.format(word=COMMON_WORD))
                    if k == 0 and rare:
                        text = add_sentence(text, RARE_SENTENCE.format(word=RARE_WORD))
                    if k == n_messages - 1 and cjk:
                        text = add_sentence(text, ZH_PHRASE_SENTENCE)
                    body = text
                    if previous:
                        quoted = "\n".join("> " + line for line in previous.splitlines()[:4])
                        body = f"{text}\n\nOn {times[k - 1]:%a, %d %b %Y %H:%M}, wrote:\n{quoted}"
                    previous = text
                    sender = agent_email if from_agent else requester
                    if from_agent:
                        first_response = times[k]
                    msgid = f"<{tid}.{k}.{rng.getrandbits(40):x}@{sender.split('@')[1]}>"
                    rows["message"].append(
                        {
                            "id": message_id,
                            "ticket_id": tid,
                            "direction": "out" if from_agent else "in",
                            "kind": "reply" if from_agent else "customer",
                            "threaded_by": "web" if from_agent else ("new" if k == 0 else "token"),
                            "message_id": msgid,
                            "fingerprint": hashlib.sha256(msgid.encode()).hexdigest(),
                            "raw_sha256": None,
                            "source": "web" if from_agent else "smtp",
                            "from_email": sender,
                            "from_name": agent_name if from_agent else sender.split("@")[0],
                            "sender_ambiguous": False,
                            "to": [requester] if from_agent else [SUPPORT],
                            "cc": [],
                            "reply_to": [],
                            "subject": subject if k == 0 else f"Re: {subject}",
                            "date": times[k],
                            "received_at": times[k],
                            "body": body,
                            "text": text,
                            "html": None,
                            "flags": {},
                        }
                    )
                    rows["event"].append(
                        {
                            "ticket_id": tid,
                            "at": times[k],
                            "actor": sender,
                            "type": "message",
                            "from_value": None,
                            "to_value": "reply" if from_agent else "customer",
                            "message_pk": message_id,
                            "block": None,
                        }
                    )
                built.messages += n_messages
                tags = []
                if rng.random() < 0.20:
                    tags = sorted(set(rng.choices(TAGS, TAG_WEIGHTS, k=rng.choice([1, 1, 2]))))
                rows["ticket"].append(
                    {
                        "id": tid,
                        "subject": subject,
                        "status": status,
                        "priority": rng.choices(
                            ["low", "normal", "high", "urgent"], [15, 60, 20, 5]
                        )[0],
                        "assignee_id": assignee,
                        "team": rng.choices([None, "billing", "tech", "sales"], [40, 20, 25, 15])[
                            0
                        ],
                        "requester": requester,
                        "created_at": created,
                        "updated_at": updated,
                        "first_response_at": first_response,
                        "solved_at": updated if status in ("solved", "closed") else None,
                        "merged_into": rng.randrange(1, tid - 50) if merged else None,
                        "followup_of": None,
                        "spam": False,
                        "due_at": None,
                    }
                )
                rows["participant"].append(
                    {"ticket_id": tid, "email": requester, "role": "requester", "added_at": created}
                )
                if rng.random() < 0.10:
                    cc = rng.choice(others)
                    if cc != requester:
                        rows["participant"].append(
                            {"ticket_id": tid, "email": cc, "role": "cc", "added_at": created}
                        )
                rows["ticket_tag"].extend({"ticket_id": tid, "tag": t} for t in tags)
                rows["event"].append(
                    {
                        "ticket_id": tid,
                        "at": created,
                        "actor": requester,
                        "type": "created",
                        "from_value": None,
                        "to_value": "new",
                        "message_pk": None,
                        "block": None,
                    }
                )
                if not merged:
                    counts["live"] += 1
                    counts["open"] += status == "open"
                    counts["mine"] += assignee == me_id
                    counts["unassigned"] += assignee is None
                    counts["tag"] += TAG in tags
                    counts["common"] += common
                    counts["rare"] += rare
                    counts["cjk"] += cjk
                if (
                    not merged
                    and n_messages == 3
                    and requester in regulars[:50]
                    and tid > n - CHUNK
                ):
                    built.ticket_page_id = tid
            with rt.engine.begin() as conn:
                for name in ("ticket", "participant", "ticket_tag", "message", "event"):
                    if rows[name]:
                        conn.execute(tables[name].insert(), rows[name])
            progress(f"  inserted {min(n, chunk_start + CHUNK - 1):>7} tickets")
        progress("  building the search index")
    progress("")
    finish_build(rt)
    built.seconds = time.perf_counter() - start
    built.index_seconds = deferred.get("seconds", 0.0)
    built.live = counts["live"]
    built.expected = counts
    if not built.ticket_page_id:
        built.ticket_page_id = n
    return built


def progress(line: str) -> None:
    """A status line on a terminal's stderr, overwritten by the next one."""
    if sys.stderr.isatty():
        print(f"\r{line:<40}", end="" if line else "\r", file=sys.stderr, flush=True)


def add_sentence(text: str, sentence: str) -> str:
    """Put `sentence` before the closing line of a message."""
    head, _, closing = text.rpartition("\n\n")
    return f"{head} {sentence}\n\n{closing}" if head else f"{text} {sentence}"


def message_text(
    rng: random.Random, language: str, from_agent: bool, day: datetime, agent: str
) -> str:
    if language == "en":
        pool = EN_AGENT if from_agent else EN_CUSTOMER
        lines = [fill(s, rng, day) for s in rng.sample(pool, rng.randint(3, 6))]
        opening = rng.choice(EN_OPEN)
        closing = rng.choice(EN_CLOSE) + ("\n" + agent if from_agent else "")
        return f"{opening}\n\n{' '.join(lines)}\n\n{closing}"
    if language == "zh":
        pool = ZH_AGENT if from_agent else ZH_CUSTOMER
        closing = "此致\n" + (agent if from_agent else "敬礼")
    else:
        pool = JA_AGENT if from_agent else JA_CUSTOMER
        closing = agent if from_agent else "よろしくお願いいたします。"
    lines = [fill(s, rng, day) for s in rng.sample(pool, min(len(pool), rng.randint(3, 6)))]
    return f"{''.join(lines)}\n\n{closing}"


@contextmanager
def search_index_deferred(rt: Any) -> Iterator[dict[str, float]]:
    """Build migration 0004's search indexes after the bulk load instead of row by row.

    SQLite: drop the message_fts and ticket_fts triggers, then put them back exactly as
    they were and fill the indexes with FTS5's 'rebuild' (what 0004 itself does for the
    mail already there). PostgreSQL: drop the pg_trgm GIN indexes (*_trgm), then create
    them again from their own definitions. Either way the load is 3-4x faster and the indexes end up
    the same. Yields a dict that gets the seconds the rebuild took."""
    timing: dict[str, float] = {}
    sqlite = rt.engine.dialect.name == "sqlite"
    with rt.engine.begin() as conn:
        if sqlite:
            found = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                " AND name LIKE '%\\_fts\\_%' ESCAPE '\\'"
            ).all()
            drop = 'DROP TRIGGER "{}"'
        else:
            found = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE schemaname = current_schema() AND indexname LIKE '%%\\_trgm'"
            ).all()
            drop = 'DROP INDEX "{}"'
        for name, _sql in found:
            conn.exec_driver_sql(drop.format(name))
    try:
        yield timing
    finally:
        start = time.perf_counter()
        with rt.engine.begin() as conn:
            for _name, sql in found:
                conn.exec_driver_sql(sql)
            if sqlite:
                for fts in ("message_fts", "ticket_fts"):
                    conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
        timing["seconds"] = time.perf_counter() - start


def finish_build(rt: Any) -> None:
    """Checkpoint SQLite's WAL; move PostgreSQL's id sequences past the explicit ids."""
    with rt.engine.begin() as conn:
        if rt.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            for table in ("ticket", "message", "event"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            conn.exec_driver_sql("ANALYZE")  # autovacuum would soon; do not wait for it


# --------------------------------------------------------------------------- setup


def write_config(directory: Path, database_url: str) -> Path:
    """inboxd.toml: a fresh data_dir, the database URL and the agents."""
    directory.mkdir(parents=True)
    lines = [
        "[inboxd]",
        f"data_dir = {json.dumps((directory / 'data').as_posix())}",
        f"database_url = {json.dumps(database_url)}",
        f"support_address = {json.dumps(SUPPORT)}",
    ]
    for email, name, role, team, _share in AGENTS:
        lines += [
            "",
            "[[agents]]",
            f"email = {json.dumps(email)}",
            f"name = {json.dumps(name)}",
            f"role = {json.dumps(role)}",
            f"team = {json.dumps(team)}",
        ]
    cfg = directory / "inboxd.toml"
    cfg.write_text("\n".join(lines) + "\n", "utf-8")
    return cfg


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema in `url`'s database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def web_server(rt: Any) -> Iterator[str]:
    """create_app(rt, Metrics()) under uvicorn in a thread; yields its base URL."""
    import uvicorn

    from inboxd.metrics import Metrics
    from inboxd.web.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(rt, Metrics()),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, name="bench-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sys.exit("bench/web_list.py: the web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    label: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    expected: int | None = None  # the total a list page must show
    times: list[float] = field(default_factory=list)
    sql_times: list[float] = field(default_factory=list)
    total: int | None = None
    size: int = 0

    @property
    def is_list(self) -> bool:
        return self.path == "/"


def cases(built: Built) -> list[Case]:
    e = built.expected
    pages = max(1, -(-built.live // 50))
    page = min(200, pages)
    return [
        Case("healthz (baseline)", "/healthz"),
        Case("list: default", "/", {}, built.live),
        Case(f"list: page {page}", "/", {"page": str(page)}, built.live),
        Case("list: status=open", "/", {"status": "open"}, e["open"]),
        Case("list: assignee=mine", "/", {"assignee": "mine"}, e["mine"]),
        Case("list: assignee=unassigned", "/", {"assignee": "unassigned"}, e["unassigned"]),
        Case(f"list: tag={TAG}", "/", {"tag": TAG}, e["tag"]),
        Case("list: sort=priority", "/", {"sort": "priority"}, built.live),
        Case(f"list: q={COMMON_WORD} (~1%)", "/", {"q": COMMON_WORD}, e["common"]),
        Case(f"list: q={RARE_WORD} (rare)", "/", {"q": RARE_WORD}, e["rare"]),
        Case(f"list: q={CJK_PHRASE} (CJK)", "/", {"q": CJK_PHRASE}, e["cjk"]),
        Case("ticket page", f"/tickets/{built.ticket_page_id}"),
    ]


TOTAL = re.compile(r'<span id="total">(\d+)</span>')


def request(client: Any, case: Case, problems: list[str]) -> float:
    """One GET, timed from send to the last byte of the body."""
    start = time.perf_counter()
    response = client.get(case.path, params=case.params)
    body = response.content
    seconds = time.perf_counter() - start
    case.size = len(body)
    if response.status_code != 200:
        problems.append(f"{case.label}: HTTP {response.status_code}")
    elif case.is_list:
        found = TOTAL.search(response.text)
        case.total = int(found.group(1)) if found else None
        if case.total != case.expected:
            problems.append(f"{case.label}: the page shows {case.total}, expected {case.expected}")
    return seconds


def web_filter(params: dict[str, str]) -> Any:
    """The TicketFilter webview.ticket_list builds for these query parameters."""
    from inboxd.tickets import queries

    assignee = {"mine": ME, "unassigned": "none"}.get(params.get("assignee", ""))
    page = int(params.get("page", "1"))
    return queries.TicketFilter(
        status=params.get("status"),
        assignee=assignee or params.get("assignee"),
        priority=params.get("priority"),
        tag=params.get("tag"),
        team=params.get("team"),
        q=params.get("q"),
        sort=params.get("sort", "updated"),
        limit=50,
        offset=(page - 1) * 50,
    )


def time_sql(rt: Any, case: Case, reps: int, budget: float) -> None:
    """list_tickets + count_tickets for the case's filter, no HTTP, no rendering."""
    from inboxd.db import session_scope
    from inboxd.tickets import queries

    flt = web_filter(case.params)
    for _ in range(reps):
        if len(case.sql_times) >= MIN_REQUESTS and sum(case.sql_times) > budget:
            break
        start = time.perf_counter()
        with session_scope(rt.engine) as session:
            queries.list_tickets(session, flt)
            queries.count_tickets(session, flt)
        case.sql_times.append(time.perf_counter() - start)


def time_handler_sql(rt: Any, cookie: str, reps: int) -> list[float]:
    """Every query the default list page runs, in one session, without HTTP or jinja2."""
    from inboxd.agents import directory
    from inboxd.db import session_scope
    from inboxd.tickets import queries
    from inboxd.web import signin

    flt = web_filter({})
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        with session_scope(rt.engine) as session:
            signin.session_agent(session, cookie)
        with session_scope(rt.engine) as session:
            tickets = queries.list_tickets(session, flt)
            queries.tickets_json(session, tickets)
            queries.count_tickets(session, flt)
            queries.count_by_status(session)
            directory.list_agents(session)
        times.append(time.perf_counter() - start)
    return times


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    wide = sum(unicodedata.east_asian_width(c) in "WF" for c in text)
    return text + " " * max(0, width - len(text) - wide)


def load_average() -> str:
    """The machine's load (other work on it skews every number here, not the ratios alone)."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def ms(seconds: float) -> float:
    return seconds * 1000


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickets", type=int, default=100_000, metavar="N")
    ap.add_argument("--requests", type=int, default=50, metavar="R", help="timed per case")
    ap.add_argument(
        "--database-url",
        default="",
        metavar="URL",
        help="PostgreSQL to run against, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        " (a fresh schema, dropped at the end); default: SQLite in the data dir",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=30.0,
        metavar="S",
        help=f"stop timing a case once its requests took S seconds (after {MIN_REQUESTS})",
    )
    ap.add_argument("--keep", type=Path, metavar="DIR", help="work here and keep everything")
    ap.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tickets < 1 or args.requests < 1:
        ap.error("--tickets and --requests must be at least 1")

    with work_dir(args.keep, "inboxd-bench-") as work:
        if args.database_url:
            with pg_schema(args.database_url) as url:
                return bench(args, work, url)
        return bench(args, work, "")


def bench(args: argparse.Namespace, work: Path, database_url: str) -> int:
    import httpx

    from inboxd import __version__
    from inboxd import config as config_mod
    from inboxd.agents.directory import get_agent
    from inboxd.db import session_scope
    from inboxd.runtime import open_runtime
    from inboxd.web import signin
    from inboxd.web.security import SESSION_COOKIE

    rt = open_runtime(config_mod.load(write_config(work / "site", database_url)))
    dialect = rt.engine.dialect.name
    where = "PostgreSQL " + rt.engine.url.render_as_string() if database_url else "SQLite"
    print(
        f"inboxd {__version__} web list benchmark: {args.tickets} tickets, {args.requests}"
        f" requests per case, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"database: {where}; work dir: {work} on {mount_of(work)}; {load_average()}")
    built = build(rt, args.tickets, args.seed)
    extra = f"; of it the search index {built.index_seconds:.1f} s"
    if dialect == "sqlite":
        db_file = rt.config.data_dir / "inboxd.db"
        extra += f"; database file {db_file.stat().st_size / 2**20:.0f} MiB"
    print(
        f"build: {built.tickets} tickets ({built.live} not merged), {built.messages} messages"
        f" in {built.seconds:.1f} s ({built.tickets / built.seconds:.0f} tickets/s{extra})"
    )

    with session_scope(rt.engine) as session:
        cookie = signin.open_session(session, get_agent(session, ME))
    todo = cases(built)
    problems: list[str] = []
    with (
        web_server(rt) as base,
        httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=120) as client,
    ):
        for case in todo:
            spent = 0.0
            for _ in range(WARMUP):
                spent += request(client, case, problems)
                if spent > WARMUP_BUDGET:
                    break
        problems.clear()  # a warm-up problem shows again in the rounds
        for _ in range(args.requests):
            for case in todo:
                if len(case.times) < MIN_REQUESTS or sum(case.times) < args.budget:
                    case.times.append(request(client, case, problems))
    sql_reps = max(5, args.requests // 5)
    for case in todo:
        if case.is_list:
            time_sql(rt, case, sql_reps, args.budget)
    handler = time_handler_sql(rt, cookie, sql_reps)
    rt.engine.dispose()

    base_p50 = statistics.median(todo[0].times)
    print()
    print(
        f"{'case':<30} {'tickets':>8} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'x healthz':>9}"
        f" {'SQL p50':>8} {'KiB':>6}"
    )
    for case in todo:
        p50 = statistics.median(case.times)
        total = "" if case.total is None else str(case.total)
        sql = f"{ms(statistics.median(case.sql_times)):8.1f}" if case.sql_times else f"{'':>8}"
        print(
            f"{pad(case.label, 30)} {total:>8} {len(case.times):>3} {ms(p50):8.1f}"
            f" {ms(p95(case.times)):8.1f} {p50 / base_p50:8.1f}x {sql} {case.size / 1024:6.1f}"
        )
    default = todo[1]
    print(
        f"SQL p50 = list_tickets + count_tickets in-process ({sql_reps} runs each); default"
        f" page's bare SQL {ms(statistics.median(default.sql_times)):.1f} ms, all of its"
        f" handler's queries (session, list, tickets_json, count, count_by_status,"
        f" list_agents) {ms(statistics.median(handler)):.1f} ms"
    )
    print(f"ticket page: /tickets/{built.ticket_page_id}; {load_average()}")
    status = "ok" if not problems else f"{len(problems)} MISMATCHES"
    print(f"check pages: {status}")
    for problem in problems[:10]:
        print(f"  {problem}")
    if len(problems) > 10:
        print(f"  ... and {len(problems) - 10} more")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
