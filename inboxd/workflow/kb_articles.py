"""kb_articles.py: knowledge-base articles read from Markdown files (SPEC §10.6).

An article is a file `*.md` under the KB folder (a folder per language is allowed, e.g.
`data/kb/zh-Hans/reset-password.md`) that starts with a YAML front matter block:

    ---
    title: Reset your password
    slug: reset-password          # default: the file name
    language: en                  # default: the folder's name if it is a language, else en
    tags: [account, login]
    visibility: public            # public | internal (signed-in agents only)
    summary: One line for lists and for the acknowledgement (default: first paragraph)
    ---

Translations share a slug. Files are read, never written: an admin edits them in any
editor and keeps them in git. A file that cannot be used is reported with its reason and
skipped, so one broken article never stops the others (or an acknowledgement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import yaml
from markdown_it import MarkdownIt

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
VISIBILITIES = ("public", "internal")
_KEYS = {"title", "slug", "language", "tags", "visibility", "summary"}
# A summary longer than this is cut (it goes into mail and lists).
SUMMARY_CHARS = 240


@dataclass(frozen=True)
class Article:
    """One article in one language."""

    slug: str
    language: str
    title: str
    body: str  # Markdown, without the front matter
    summary: str
    tags: tuple[str, ...] = ()
    visibility: str = "public"
    path: str = ""  # relative to the KB folder, for messages

    @property
    def key(self) -> str:
        """Unique in a KB: 'reset-password:zh-Hans'."""
        return f"{self.slug}:{self.language}"

    @property
    def public(self) -> bool:
        return self.visibility == "public"


@dataclass
class Loaded:
    """What a KB folder holds: the usable articles and, per file, why one was not."""

    articles: list[Article] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def article_files(folder: Path) -> list[Path]:
    """Every article file, in a stable order (hidden files and folders skipped)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.md")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.name.lower() != "readme.md"
    )


def load_articles(folder: Path) -> Loaded:
    """Read every article under `folder`; a bad file becomes a problem line, not an error."""
    loaded = Loaded()
    seen: dict[str, str] = {}
    for path in article_files(folder):
        rel = path.relative_to(folder).as_posix()
        try:
            article = read_article(path, rel)
        except ValueError as exc:
            loaded.problems.append(f"{rel}: {exc}")
            continue
        if article.key in seen:
            taken = seen[article.key]
            loaded.problems.append(f"{rel}: {article.slug!r} in {article.language} is {taken}'s")
            continue
        seen[article.key] = rel
        loaded.articles.append(article)
    return loaded


def read_article(path: Path, rel: str = "") -> Article:
    """One file as an Article; ValueError says what is wrong with it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from None
    return parse_article(text, rel or path.name)


def parse_article(text: str, rel: str) -> Article:
    """Front matter and Markdown body as an Article. `rel` (the path in the KB folder)
    gives the default slug and language."""
    if not text.lstrip().startswith("---"):
        raise ValueError("no front matter: the file must start with a '---' block")
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {_first_line(exc)}") from None
    meta = dict(post.metadata)
    unknown = sorted(set(map(str, meta)) - _KEYS)
    if unknown:
        raise ValueError(f"unknown front matter key {unknown[0]!r} (known: {sorted(_KEYS)})")
    parts = Path(rel).parts
    title = _text(meta, "title", "")
    if not title:
        raise ValueError("front matter has no title")
    slug = _text(meta, "slug", Path(rel).stem.lower())
    if not _SLUG.match(slug):
        raise ValueError(f"slug {slug!r}: expected lowercase letters, digits and '-'")
    folder_language = parts[-2] if len(parts) > 1 and _LANGUAGE.match(parts[-2]) else "en"
    language = _text(meta, "language", folder_language)
    if not _LANGUAGE.match(language):
        raise ValueError(f"language {language!r}: expected a tag like en, de, zh-Hans")
    visibility = _text(meta, "visibility", "public")
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility {visibility!r}: expected public or internal")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list):
        raise ValueError("tags: expected a list like [account, login]")
    body = post.content.strip()
    summary = _text(meta, "summary", "") or first_paragraph(body)
    return Article(
        slug=slug,
        language=language,
        title=title,
        body=body,
        summary=_cut(summary, SUMMARY_CHARS),
        tags=tuple(str(t).strip().lower() for t in tags if str(t).strip()),
        visibility=visibility,
        path=rel,
    )


def _text(meta: dict[str, object], key: str, default: str) -> str:
    value = meta.get(key)
    if value is None:
        return default
    if isinstance(value, list | dict):
        raise ValueError(f"{key}: expected a text, got a {type(value).__name__}")
    return str(value).strip()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def first_paragraph(markdown: str) -> str:
    """The first paragraph of plain prose (headings, lists and code skipped), as text."""
    for block in re.split(r"\n\s*\n", markdown):
        block = block.strip()
        if not block or block.startswith(("#", "-", "*", "|", "```", ">", "1.")):
            continue
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", block)  # links keep their text
        text = re.sub(r"[*_`]+", "", text)
        return " ".join(text.split())
    return ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Raw HTML in an article is not passed through (`html: False`): an article is prose, and
# the page that shows it sanitizes the result as it does mail HTML (web/sanitize.py).
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(body: str) -> str:
    """The article's Markdown as HTML, raw HTML escaped; sanitize before showing."""
    return _MARKDOWN.render(body)


def plain_text(article: Article) -> str:
    """What the search reads of the body: the Markdown without its link targets."""
    return re.sub(r"\]\([^)]*\)", "]", article.body)
