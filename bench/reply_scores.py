"""Score inboxd.quotes against the reply corpora in ../shared/corpora.

    python bench/reply_scores.py [CORPORA_DIR]

Prints one row per corpus and language: cases, exact matches, leaks (a line of the old
message survived) and losses (a line the sender wrote was cut). This file is the one home
of the scoring rules; tests/test_reply_corpora.py imports it.

Expectations come from three places:
  * talon: talon/EXPECTED.json (written by the corpus builder from upstream tests);
  * web-ridge: EXPECTED.md's rule, base + signature + quote -> base (+ signature, see below);
  * everything else: tests/data/replies/expected.json, written by hand for inboxd.
"""

from __future__ import annotations

import email
import itertools
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inboxd.mail.quotes import strip_quoted, strip_quoted_html  # noqa: E402

DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"
EXPECTED_JSON = ROOT / "tests" / "data" / "replies" / "expected.json"
WEB_RIDGE = "web-ridge-email-reply-parser"

_BLANK_RUNS = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Line endings to "\\n", no trailing spaces, at most one blank line in a row, trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _line_counts(text: str) -> Counter[str]:
    return Counter(line.strip() for line in normalise(text).split("\n") if line.strip())


@dataclass(frozen=True)
class Case:
    corpus: str
    language: str
    name: str  # corpus-relative path, or a description of a composed case
    kind: str  # "text" or "html"
    body: str
    expected: str
    compare: str = "normalised"  # or "no-whitespace" (talon's HTML rule)


@dataclass(frozen=True)
class Score:
    exact: bool
    leak: bool  # a line that is not in the expected text survived
    loss: bool  # a line of the expected text is missing


def extract(case: Case) -> str:
    """Run the module under test on one case."""
    return strip_quoted_html(case.body) if case.kind == "html" else strip_quoted(case.body)


def score(got: str, expected: str, compare: str = "normalised") -> Score:
    """Compare one result with its expectation."""
    if compare == "no-whitespace":
        exact = _WHITESPACE.sub("", got) == _WHITESPACE.sub("", expected)
    else:
        exact = normalise(got) == normalise(expected)
    got_lines, want_lines = _line_counts(got), _line_counts(expected)
    if exact:
        return Score(True, False, False)
    return Score(
        exact=False,
        leak=bool(got_lines - want_lines),
        loss=bool(want_lines - got_lines),
    )


# ---------------------------------------------------------------------------
# Loading the corpora
# ---------------------------------------------------------------------------


def first_text_plain(path: Path) -> str:
    """The first text/plain part of an .eml file, decoded (stdlib email, policy.default)."""
    with path.open("rb") as fh:
        msg = email.message_from_binary_file(fh, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_content())
    return ""


def talon_cases(corpora: Path) -> Iterator[Case]:
    base = corpora / "talon"
    items = json.loads((base / "EXPECTED.json").read_text(encoding="utf-8"))["items"]
    for rel, item in sorted(items.items()):
        path = base / "tests" / "fixtures" / rel
        if item["format"] == "html":
            body = path.read_text(encoding="utf-8", errors="replace")
            yield Case("talon", "en", rel, "html", body, item["expected"], "no-whitespace")
        else:
            body = first_text_plain(path)
            yield Case("talon", "en", rel, "text", body, item["expected"])


def _fragment(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def web_ridge_cases(corpora: Path) -> Iterator[Case]:
    """EXPECTED.md: base B + "\\n\\n" + signature S + "\\n\\n" + quote Q must give B.

    inboxd keeps signatures, so the expectation here is B + "\\n\\n" + S.
    """
    data = corpora / WEB_RIDGE / "dataset"
    bases = sorted((data / "basemail").glob("*.txt"))
    signatures = sorted((data / "signatures").glob("*.txt"))
    quotes = sorted((data / "quoted_reply").glob("*.txt"))
    for b, s, q in itertools.product(bases, signatures, quotes):
        base, sig, quote = _fragment(b), _fragment(s), _fragment(q)
        body = base + "\n\n" + sig + "\n\n" + quote
        name = f"{b.stem} + {s.stem} + {q.stem}"
        yield Case(WEB_RIDGE, "en", name, "text", body, base + "\n\n" + sig)


def labelled_cases(corpora: Path, expected_json: Path = EXPECTED_JSON) -> Iterator[Case]:
    """Fixtures whose expectations were written by hand for inboxd."""
    doc = json.loads(expected_json.read_text(encoding="utf-8"))
    for rel, item in doc["cases"].items():
        corpus = rel.split("/", 1)[0]
        body = (corpora / rel).read_text(encoding="utf-8", errors="replace")
        yield Case(corpus, item["lang"], rel, "text", body, item["expected"])


def all_cases(corpora: Path) -> Iterator[Case]:
    yield from talon_cases(corpora)
    yield from web_ridge_cases(corpora)
    yield from labelled_cases(corpora)


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def table(cases: list[Case]) -> list[tuple[str, str, int, int, int, int]]:
    """Rows of (corpus, language, cases, exact, leaks, losses), sorted."""
    totals: dict[tuple[str, str], list[int]] = {}
    for case in cases:
        result = score(extract(case), case.expected, case.compare)
        row = totals.setdefault((case.corpus, case.language), [0, 0, 0, 0])
        row[0] += 1
        row[1] += result.exact
        row[2] += result.leak
        row[3] += result.loss
    return [(c, lang, *counts) for (c, lang), counts in sorted(totals.items())]  # type: ignore[misc]


def main(argv: list[str]) -> int:
    corpora = Path(argv[1]) if len(argv) > 1 else DEFAULT_CORPORA
    if not corpora.is_dir():
        print(f"corpora not found: {corpora}", file=sys.stderr)
        return 1
    rows = table(list(all_cases(corpora)))
    header = ("corpus", "language", "cases", "exact", "leaks", "losses")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    total = [sum(r[i] for r in rows) for i in range(2, 6)]
    lines = [header, *rows, ("TOTAL", "", *total)]
    for n, row in enumerate(lines):
        print(
            "  ".join(
                str(v).ljust(w) if i < 2 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0 or n == len(lines) - 2:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
