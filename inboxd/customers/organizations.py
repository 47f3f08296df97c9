"""organizations.py: which organisation a customer's addresses belong to (SPEC §10.7).

From `[[organizations]]` domains only: an address at a listed domain, or under one
(`eu.acme.example` under `acme.example`), belongs to that organisation. The shipped
free-mail domains (inboxd/data/freemail.txt) never do: GitLab's support team turned
Zendesk's domain mapping off because everyone with a gmail address shared an
organisation. `check_organizations` refuses an entry that lists one (or a public suffix
such as co.uk) when inboxd starts. Pure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from tld import is_tld

from inboxd.config import Config, OrganizationEntry
from inboxd.errors import ConfigError

FREEMAIL_FILE = Path(__file__).resolve().parent.parent / "data" / "freemail.txt"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


@functools.cache
def freemail_domains() -> frozenset[str]:
    """The shipped free-mail domains: anyone can have an address there."""
    lines = FREEMAIL_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip().lower() for x in lines if x.strip()[:1] not in ("", "#"))


def _parents(domain: str) -> list[str]:
    """`a.b.example` -> [a.b.example, b.example] (never the bare top-level domain)."""
    labels = domain.lower().strip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def is_freemail(domain: str) -> bool:
    """Is `domain`, or a domain it is under, a free-mail domain?"""
    return any(d in freemail_domains() for d in _parents(domain))


def _normal(domain: str) -> str:
    return domain.strip().lower().lstrip("@").rstrip(".")


def check_organizations(cfg: Config) -> None:
    """Refuse `[[organizations]]` that would put strangers together: a free-mail domain,
    a public suffix, a domain two organisations list, a name used twice. Raises
    ConfigError naming the organisation and the domain."""
    owners: dict[str, str] = {}
    names: set[str] = set()
    for org in cfg.organizations:
        where = f"{cfg.source}: [[organizations]] {org.name!r}"
        if org.name.lower() in names:
            raise ConfigError(f"{where} is defined twice")
        names.add(org.name.lower())
        for raw in org.domains:
            domain = _normal(raw)
            if owners.get(domain) == org.name:
                continue  # listed twice by the same organisation: harmless
            if not _DOMAIN.match(domain):
                raise ConfigError(f"{where}: {raw!r} is not a mail domain like acme.example")
            if is_freemail(domain):
                raise ConfigError(
                    f"{where}: {domain!r} is a free-mail domain (inboxd/data/freemail.txt):"
                    " anyone can have an address there, so it never maps to an organisation"
                )
            if is_tld(domain):
                raise ConfigError(
                    f"{where}: {domain!r} is a public suffix (anyone can register under it),"
                    " not one organisation's domain"
                )
            if domain in owners:
                raise ConfigError(f"{where}: {domain!r} is listed by {owners[domain]!r} too")
            owners[domain] = org.name


@functools.cache
def _domains(org: OrganizationEntry) -> frozenset[str]:
    return frozenset(_normal(d) for d in org.domains)


def organization_for_domain(organizations: Sequence[OrganizationEntry], domain: str) -> str | None:
    """The organisation that lists `domain` or a domain it is under, else None."""
    if not domain or is_freemail(domain):
        return None
    for candidate in _parents(domain):  # the most specific listing wins
        for org in organizations:
            if candidate in _domains(org):
                return org.name
    return None


def organization_of(
    organizations: Sequence[OrganizationEntry], emails: Sequence[str]
) -> str | None:
    """The organisation of the first address (primary first) that has one."""
    for email in emails:
        found = organization_for_domain(organizations, email.rpartition("@")[2])
        if found is not None:
            return found
    return None


def fingerprint(organizations: Sequence[OrganizationEntry]) -> str:
    """What the stored profiles' organisations were computed from."""
    data = [[o.name, sorted(_domains(o))] for o in organizations]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]
