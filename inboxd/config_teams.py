"""config_teams.py: `[[teams]]` of inboxd.toml (SPEC §10.9), checked at start-up.

Config (config.py) holds them as `teams` and checks what spans several tables (names
used twice, a team address that is already support@'s).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, field_validator, model_validator

from inboxd.config_base import Section, address

TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


def _team_name(value: str) -> str:
    if not TEAM_NAME.match(value):
        raise ValueError("expected a lowercase word (letters, digits, - _ .) like billing")
    return value


class TeamEntry(Section):
    """`[[teams]]` (SPEC §10.9): a queue, the agents who work it, and its lead, who hears
    of its breaches and bad ratings. `email` is the team's own address: mail to it is
    accepted like an alias and opens tickets in the team's queue."""

    name: Annotated[str, AfterValidator(_team_name)]
    agents: tuple[str, ...] = ()
    lead: str = ""
    email: str = ""

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(address(v) for v in value))

    @field_validator("lead", "email")
    @classmethod
    def _check_optionaladdress(cls, value: str) -> str:
        return address(value) if value else value

    @model_validator(mode="after")
    def _lead_in_team(self) -> TeamEntry:
        if self.lead and self.lead not in self.agents:
            raise ValueError(
                f"team {self.name!r}: lead {self.lead!r} is not one of its agents"
                f" ({', '.join(self.agents) or 'none listed'})"
            )
        return self
