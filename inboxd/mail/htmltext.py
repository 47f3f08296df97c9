"""htmltext.py: turn an HTML mail body into readable plain text.

Pure; never touches the DB. inscriptis does the layout (tables, lists, line breaks);
this module only caps the input so a hostile HTML part cannot stall the worker.
"""

from __future__ import annotations

import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

# Real HTML mail bodies are rarely above a few hundred KB; a multi-megabyte HTML part is
# nearly always generated junk or an attack on the layout engine. The raw part is kept
# whole either way, only the text view of it is cut.
MAX_HTML_CHARS = 2_000_000

_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


def html_to_text(html: str) -> str:
    """Return the visible text of `html`, with at most one blank line in a row."""
    html = html[:MAX_HTML_CHARS]
    if not html.strip():
        return ""
    try:
        text = get_text(html, _CONFIG)
    except (ValueError, RecursionError):
        # lxml refuses documents that are nested beyond its limits; a tag-stripped view
        # is still better than no text at all.
        text = re.sub(r"<[^>]*>", " ", html)
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")
