"""macro_picker.py: the reply box's macro picker. Inserting a macro sends nothing: the
page comes back with the macro's file in the reply box, merged with what the agent had
typed, to be edited and sent (then its command lines run, as `#macro` would by mail).
"""

from __future__ import annotations

from inboxd.mail.command_tags import extract_tags


def with_macro(typed: str, macro: str) -> str:
    """The reply box after inserting a macro: every command line at the top (the block a
    reply's commands must be, SPEC §6), then what the agent typed, then the macro's text."""
    typed_calls, typed_text = extract_tags(typed)
    macro_calls, macro_body = extract_tags(macro)
    block = "\n".join(c.line for c in [*typed_calls, *macro_calls])
    body = "\n\n".join(part.strip("\n") for part in (typed_text, macro_body) if part.strip())
    return f"{block}\n\n{body}" if block else body
