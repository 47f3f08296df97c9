"""kb_search.py: the knowledge base's index and its BM25 ranking (SPEC §10.6).

The index is a small inverted file kept in Python and stored as JSON in the data folder
(`kb-index.json`), the same on SQLite and on PostgreSQL: the articles live in files, not
in the database, and neither database's full-text parser segments Chinese (kb_text.py).
Terms are counted per field and the title (with the tags) weighs `TITLE_WEIGHT` times the
body, a simple BM25F. A question is turned into terms once per language in the KB,
because its European words are stemmed with each article's own stemmer.

The index is rebuilt when a file under the KB folder changes (its path, size or
modification time), on the next search, so the daemon follows edits without a restart;
`inboxd kb reindex` rebuilds it at once. Reads files; never touches the database.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inboxd.workflow import kb_text
from inboxd.workflow.kb_articles import Article, load_articles, plain_text

log = logging.getLogger(__name__)

TITLE_WEIGHT = 3.0
K1 = 1.2
B = 0.75
_VERSION = 1


@dataclass(frozen=True)
class Hit:
    """One article found, with its BM25 score (higher is more relevant)."""

    article: Article
    score: float

    def to_json(self) -> dict[str, Any]:
        a = self.article
        return {
            "slug": a.slug,
            "language": a.language,
            "title": a.title,
            "summary": a.summary,
            "visibility": a.visibility,
            "score": round(self.score, 3),
        }


class KbIndex:
    """Articles and their weighted term counts; `search()` ranks them."""

    def __init__(
        self, articles: list[Article], postings: dict[str, list[tuple[int, float]]],
        lengths: list[float], problems: list[str], signature: list[Any],
    ) -> None:  # fmt: skip
        self.articles = articles
        self.postings = postings
        self.lengths = lengths
        self.problems = problems
        self.signature = signature
        self.average = (sum(lengths) / len(lengths)) if lengths else 1.0
        self.languages = sorted({a.language for a in articles})

    @classmethod
    def build(cls, folder: Path, signature: list[Any] | None = None) -> KbIndex:
        """Read and index every article under `folder`."""
        loaded = load_articles(folder)
        postings: dict[str, list[tuple[int, float]]] = {}
        lengths = []
        for number, article in enumerate(loaded.articles):
            title = kb_text.terms(" ".join([article.title, *article.tags]), article.language)
            body = kb_text.terms(plain_text(article), article.language)
            weighted: dict[str, float] = defaultdict(float)
            for term in title:
                weighted[term] += TITLE_WEIGHT
            for term in body:
                weighted[term] += 1.0
            for term, count in weighted.items():
                postings.setdefault(term, []).append((number, count))
            lengths.append(TITLE_WEIGHT * len(title) + len(body))
        return cls(
            loaded.articles,
            postings,
            lengths,
            loaded.problems,
            signature if signature is not None else folder_signature(folder),
        )

    def get(self, slug: str, language: str | None = None) -> Article | None:
        """The article with that slug, in `language` if it exists in it, else the first
        translation in the order: the language's family (zh-Hant for zh-Hans), en, any."""
        found = [a for a in self.articles if a.slug == slug]
        return pick_translation(found, language)

    def translations(self, slug: str) -> list[Article]:
        return [a for a in self.articles if a.slug == slug]

    def search(self, query: str, *, limit: int = 10, public_only: bool = False) -> list[Hit]:
        """Articles ranked by BM25 against the query, best first; only scores above 0."""
        wanted: dict[str, set[str]] = {}
        for language in self.languages:
            for term in set(kb_text.terms(query, language)):
                wanted.setdefault(term, set()).add(language)
        total = len(self.articles)
        scores: dict[int, float] = {}
        for term, languages in wanted.items():
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (total - len(posting) + 0.5) / (len(posting) + 0.5))
            for number, count in posting:
                if self.articles[number].language not in languages:
                    continue
                norm = K1 * (1 - B + B * self.lengths[number] / self.average)
                scores[number] = scores.get(number, 0.0) + idf * count * (K1 + 1) / (count + norm)
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        hits = [
            Hit(self.articles[n], s)
            for n, s in ranked
            if not public_only or self.articles[n].public
        ]
        return hits[:limit]

    # --- stored form ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "signature": self.signature,
            "articles": [asdict(a) for a in self.articles],
            "lengths": self.lengths,
            "problems": self.problems,
            "postings": self.postings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KbIndex:
        articles = [Article(**{**a, "tags": tuple(a["tags"])}) for a in data["articles"]]
        postings = {t: [(int(n), float(c)) for n, c in p] for t, p in data["postings"].items()}
        return cls(articles, postings, data["lengths"], data["problems"], data["signature"])


def pick_translation(found: list[Article], language: str | None) -> Article | None:
    """Of one article's translations, the one in `language`, else its family's, else
    English, else the first."""
    if not found:
        return None
    if language:
        for test in (
            lambda a: a.language.lower() == language.lower(),
            lambda a: kb_text.base_language(a.language) == kb_text.base_language(language),
        ):
            match = [a for a in found if test(a)]
            if match:
                return match[0]
    english = [a for a in found if kb_text.base_language(a.language) == "en"]
    return (english or found)[0]


def folder_signature(folder: Path) -> list[Any]:
    """What changes when an article is added, removed or edited: each file's path, size
    and modification time (the files `article_files` reads)."""
    rows: list[Any] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(top, folder)
        for name in sorted(files):
            if not name.endswith(".md") or name.startswith(".") or name.lower() == "readme.md":
                continue
            try:
                st = os.stat(os.path.join(top, name))
            except OSError:
                continue
            path = name if rel == "." else f"{rel}/{name}"
            rows.append([path, st.st_size, st.st_mtime_ns])
    rows.sort()
    return rows


# One index per (folder, cache file) per process, rebuilt when the folder changes, with
# the monotonic time it was last compared with the folder.
_CACHE: dict[tuple[str, str], tuple[KbIndex, float]] = {}
_LOCK = threading.Lock()


def open_index(
    folder: Path,
    cache_file: Path | None,
    *,
    rebuild: bool = False,
    max_age: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> KbIndex:
    """The current index of `folder`: from memory, else from `cache_file`, else built
    (and then stored in `cache_file`). `rebuild` builds it anew in any case.

    The folder is compared with the index at most every `max_age` seconds: reading the
    sizes and times of a thousand files takes milliseconds, which a burst of new tickets
    should not pay each time.
    """
    key = (str(folder), str(cache_file or ""))
    with _LOCK:
        kept = None if rebuild else _CACHE.get(key)
        now = clock()
        if kept is not None and now - kept[1] < max_age:
            return kept[0]
        signature = folder_signature(folder)
        if kept is not None and kept[0].signature == signature:
            _CACHE[key] = (kept[0], now)
            return kept[0]
        index = None
        if not rebuild and cache_file is not None:
            index = _read_cache(cache_file, signature)
        if index is None:
            index = KbIndex.build(folder, signature)
            for problem in index.problems:
                # The admin who saved a broken article finds why in the log.
                log.warning("kb article skipped: %s", problem)
            if cache_file is not None:
                _write_cache(cache_file, index)
        _CACHE[key] = (index, now)
        return index


def _read_cache(path: Path, signature: list[Any]) -> KbIndex | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION or data.get("signature") != signature:
            return None
        return KbIndex.from_json(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A damaged cache is only a cache: it is built again.
        log.warning("kb index %s unreadable (%s); rebuilding", path, exc)
        return None


def _write_cache(path: Path, index: KbIndex) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("kb index %s not stored: %s", path, exc)
