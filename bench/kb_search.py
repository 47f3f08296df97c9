"""Knowledge-base search: how often the right article comes first, and how fast.

    python bench/kb_search.py [--articles 1000] [--rounds 3]

Quality, on the labelled questions of bench/kb_questions.tsv (each with the slug of the
sample article in data/kb/ that answers it): precision@1 (the first article is the
right one) and recall@3 (the right one is among the first three articles, one per
slug), per language and in all. The same questions are put to two baselines measured
in the same run: SQLite FTS5 with its default `unicode61` tokenizer and with `trigram`,
both ranked by bm25() with the title weighted 3, as a SQLite-based helpdesk would do.

Speed, on a KB of N articles (the samples, then made-up articles built from their
sentences, seeded): the time to build the index and the median time of one query,
inboxd's next to FTS5 unicode61's over the same texts. Ratios, never a pass/fail.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inboxd.workflow import kb_search  # noqa: E402
from inboxd.workflow.kb_articles import Article, load_articles, plain_text  # noqa: E402
from inboxd.workflow.kb_search import KbIndex, folder_signature, open_index  # noqa: E402


def questions(off_topic: bool = False) -> list[tuple[str, str, str]]:
    """The labelled questions; with `off_topic`, only those no article answers ('-')."""
    rows = []
    for line in (ROOT / "bench" / "kb_questions.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, slug, text = line.split("\t", 2)
            if (slug == "-") == off_topic:
                rows.append((language, slug, text))
    return rows


def distinct(slugs: list[str]) -> list[str]:
    return list(dict.fromkeys(slugs))


class Fts:
    """SQLite FTS5 over the same articles, one tokenizer."""

    def __init__(self, articles: list[Article], tokenizer: str) -> None:
        self.db = sqlite3.connect(":memory:")
        columns = f"slug unindexed, title, body, tokenize='{tokenizer}'"
        self.db.execute(f"create virtual table kb using fts5({columns})")
        self.db.executemany(
            "insert into kb values (?, ?, ?)",
            [(a.slug, f"{a.title} {' '.join(a.tags)}", plain_text(a)) for a in articles],
        )
        self.trigram = tokenizer == "trigram"

    def search(self, query: str, limit: int = 10) -> list[str]:
        words = re.findall(r"\w+", query)
        if self.trigram:
            words = [w for w in words if len(w) >= 3]  # trigram cannot match shorter words
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', "") + '"' for w in words)
        rows = self.db.execute(
            "select slug from kb where kb match ? order by bm25(kb, 0, 3.0, 1.0) limit ?",
            (match, limit),
        )
        return [r[0] for r in rows]


def score(search, rows: list[tuple[str, str, str]]) -> dict[str, tuple[float, float, int]]:  # type: ignore[no-untyped-def]
    by: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for language, slug, text in rows:
        found = distinct(search(text))
        outcome = (found[:1] == [slug], slug in found[:3])
        by[language].append(outcome)
        by["all"].append(outcome)
    return {
        lang: (sum(a for a, _ in v) / len(v), sum(b for _, b in v) / len(v), len(v))
        for lang, v in by.items()
    }


def made_up_kb(folder: Path, samples: Path, count: int, seed: int = 14) -> None:
    """The samples, plus articles made of their sentences, shuffled, until `count`."""
    shutil.copytree(samples, folder)
    loaded = load_articles(samples)
    sentences: dict[str, list[str]] = defaultdict(list)
    for a in loaded.articles:
        sentences[a.language] += [s for s in re.split(r"(?<=[.。！？!?])\s*", a.body) if s.strip()]
    rng = random.Random(seed)
    languages = sorted(sentences)
    for n in range(count - len(loaded.articles)):
        language = languages[n % len(languages)]
        body = " ".join(rng.sample(sentences[language], min(12, len(sentences[language]))))
        title = rng.choice(sentences[language])[:60].replace(":", " ")
        path = folder / "made-up" / language / f"made-up-{n}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        front = f"---\ntitle: {title!r}\nslug: made-up-{n}\nlanguage: {language}\n---\n"
        path.write_text(front + body + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = questions()
    samples = ROOT / "data" / "kb"

    index = KbIndex.build(samples)
    public = [a for a in index.articles if a.public]
    systems = {
        "inboxd": lambda q: [h.article.slug for h in index.search(q, public_only=True)],
        "fts5 unicode61": Fts(public, "unicode61").search,
        "fts5 trigram": Fts(public, "trigram").search,
    }
    print(f"quality: {len(rows)} labelled questions over {len(public)} public sample articles")
    print(f"{'system':16} {'language':9} {'P@1':>6} {'R@3':>6} {'n':>4}")
    for name, search in systems.items():
        for lang, (p1, r3, n) in sorted(score(search, rows).items()):
            print(f"{name:16} {lang:9} {p1:6.2f} {r3:6.2f} {n:4d}")
    misses = [(lang, slug, text) for lang, slug, text in rows
              if distinct(systems["inboxd"](text))[:1] != [slug]]  # fmt: skip
    for lang, slug, text in misses:
        print(f"  inboxd miss ({lang}): {text!r} -> {distinct(systems['inboxd'](text))[:3]}, "
              f"wanted {slug}")  # fmt: skip

    # What `[kb] min_score` lets through: the right article first, and off-topic mail.
    off = questions(off_topic=True)
    from inboxd.config import KbSection

    threshold = KbSection().min_score
    right, wrong = [], []
    for _lang, slug, text in rows:
        hits = index.search(text, public_only=True)
        if hits and hits[0].article.slug == slug:
            right.append(hits[0].score)
    for _lang, _slug, text in off:
        hits = index.search(text, public_only=True)
        wrong.append(hits[0].score if hits else 0.0)
    passed = sum(s >= threshold for s in right)
    noise = sum(s >= threshold for s in wrong)
    print(f"\nmin_score {threshold}: {passed} of {len(rows)} questions get their article suggested "
          f"first; {noise} of {len(off)} off-topic questions get a suggestion")  # fmt: skip
    print(f"  right first-hit scores: min {min(right):.2f}, median {statistics.median(right):.2f}; "
          f"off-topic best scores: max {max(wrong):.2f}")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "kb"
        made_up_kb(folder, samples, args.articles)
        texts = [t for _, _, t in rows]
        builds: dict[str, list[float]] = defaultdict(list)
        queries: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.rounds):
            start = time.perf_counter()
            big = KbIndex.build(folder)
            builds["inboxd"].append(time.perf_counter() - start)
            start = time.perf_counter()
            fts = Fts(big.articles, "unicode61")
            builds["fts5 unicode61"].append(time.perf_counter() - start)
            for text in texts:
                start = time.perf_counter()
                big.search(text)
                queries["inboxd"].append(time.perf_counter() - start)
                start = time.perf_counter()
                fts.search(text)
                queries["fts5 unicode61"].append(time.perf_counter() - start)
            cache = Path(tmp) / "kb-index.json"
            open_index(folder, cache, rebuild=True)
            kb_search._CACHE.clear()
            start = time.perf_counter()
            open_index(folder, cache)  # a fresh process: the stored index, read back
            builds["inboxd, stored index read"].append(time.perf_counter() - start)
            start = time.perf_counter()
            folder_signature(folder)  # what every acknowledgement pays to see changes
            builds["inboxd, change check"].append(time.perf_counter() - start)
        n = len(big.articles)
        base_build = statistics.median(builds["fts5 unicode61"])
        base_query = statistics.median(queries["fts5 unicode61"])
        print(f"\nspeed: {n} articles, {args.rounds} rounds, {len(texts)} queries a round")
        for name in ("fts5 unicode61", "inboxd"):
            b, q = statistics.median(builds[name]), statistics.median(queries[name])
            print(f"{name:16} build {b * 1000:8.1f} ms ({b / base_build:5.1f}x)   "
                  f"query median {q * 1000:6.2f} ms ({q / base_query:5.1f}x)")  # fmt: skip
        for name in ("inboxd, stored index read", "inboxd, change check"):
            b = statistics.median(builds[name])
            print(f"{name:26} {b * 1000:8.1f} ms ({b / base_build:5.1f}x the FTS5 build)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
