"""inboxd kb: the knowledge base's articles, their search and their index (SPEC §10.6)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import (
    ConfigOption,
    JsonOption,
    err,
    errors,
    load_config,
    open_rt,
    print_json,
    table,
)
from inboxd.config import Config

if TYPE_CHECKING:
    from inboxd.workflow.kb_search import KbIndex

# Each command imports what it uses (cli/common.py says why): the knowledge base's
# segmenters are the slowest import of all.

app = typer.Typer(no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(
        app,
        name="kb",
        help="The knowledge base: Markdown articles under data/kb/.\n\nExample: inboxd kb list",
    )


def _open(config: Path | None, *, rebuild: bool = False) -> tuple[Config, KbIndex]:
    from inboxd.workflow.kb_suggest import kb_index

    cfg = load_config(config, reads_files=True)
    index = kb_index(cfg, rebuild=rebuild)
    for problem in index.problems:
        err(f"kb: {problem}")
    return cfg, index


@app.command("list")
def list_(
    stats: Annotated[
        bool, typer.Option("--stats", help="Also how often each was suggested and helped.")
    ] = False,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Every article: slug, language, visibility, title (files that cannot be read are
    named on stderr, with why). With --stats, from the database's events: how many
    acknowledgements suggested it and how many tickets it solved (self-service).

    Example: inboxd kb list --stats --json
    """
    with errors():
        cfg, index = _open(config)
        counts: dict[str, dict[str, int]] = {}
        if stats:
            from inboxd.db import session_scope
            from inboxd.workflow.kb_suggest import article_counts

            rt = open_rt(config)
            with session_scope(rt.engine) as session:
                counts = article_counts(session)
        zero = {"suggested": 0, "solved": 0}
        if json:
            print_json(
                [
                    {
                        **_row(a),
                        "path": a.path,
                        **({**zero, **counts.get(a.key, {})} if stats else {}),
                    }
                    for a in index.articles
                ]
            )
            return
        if not index.articles:
            err(f"no articles in {cfg.kb_dir}")
            return
        headers = ["SLUG", "LANGUAGE", "VISIBILITY", "TITLE"]
        rows: list[list[object]] = [
            [a.slug, a.language, a.visibility, a.title] for a in index.articles
        ]
        widths = [24, 8, 10, 50]
        if stats:
            headers += ["SUGGESTED", "SOLVED"]
            widths += [9, 6]
            for a, row in zip(index.articles, rows, strict=True):
                found = counts.get(a.key, zero)
                row += [found["suggested"], found["solved"]]
        table(headers, rows, widths)


@app.command("show")
def show(
    slug: Annotated[str, typer.Argument(help="The article's slug.")],
    language: Annotated[str | None, typer.Option(help="Which translation (en, zh-Hans…).")] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """One article: its front matter, its link and its Markdown.

    Example: inboxd kb show reset-password --language zh-Hant
    """
    with errors():
        cfg, index = _open(config)
        article = index.get(slug, language)
        if article is None:
            err(f"no article {slug!r} (inboxd kb list shows them)")
            raise typer.Exit(1)
        from inboxd.workflow.kb_suggest import article_url

        url = article_url(cfg, article.slug, article.language)
        others = [a.language for a in index.translations(slug) if a is not article]
        if json:
            print_json({**_row(article), "url": url, "translations": others, "body": article.body})
            return
        typer.echo(f"{article.title}\n{url}  ({article.language}, {article.visibility})")
        if others:
            typer.echo(f"also in: {', '.join(others)}")
        typer.echo(f"\n{article.body}")


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words in any language: 密码, 忘記密碼, invoice.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 10,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Articles ranked by relevance (BM25, title weighted), with their scores; compare
    them with `[kb] min_score`, the least an acknowledgement suggests.

    Example: inboxd kb search 忘記密碼
    """
    with errors():
        _cfg, index = _open(config)
        hits = index.search(query, limit=limit)
        if json:
            print_json([h.to_json() for h in hits])
            return
        if not hits:
            err(f"no article matches {query!r}")
            return
        rows = [
            [f"{h.score:.2f}", h.article.slug, h.article.language, h.article.title] for h in hits
        ]
        table(["SCORE", "SLUG", "LANGUAGE", "TITLE"], rows, [6, 24, 8, 50])


@app.command("reindex")
def reindex(config: ConfigOption = None, json: JsonOption = False) -> None:
    """Read every article again and rebuild the search index now (the daemon also does
    this by itself when a file changes).

    Example: inboxd kb reindex
    """
    with errors():
        cfg, index = _open(config, rebuild=True)
        summary = {
            "folder": str(cfg.kb_dir),
            "articles": len(index.articles),
            "terms": len(index.postings),
            "problems": index.problems,
        }
        if json:
            print_json(summary)
            return
        typer.echo(
            f"indexed {summary['articles']} articles ({summary['terms']} terms) from {cfg.kb_dir}"
        )


def _row(a: object) -> dict[str, object]:
    fields = ("slug", "language", "title", "summary", "tags", "visibility")
    return {name: getattr(a, name) for name in fields}
