"""Score inboxd on the hand-written cases of issue #10, one row per class of mail.

    python bench/mail_classes.py [-v] [--corpora]

The cases live in tests/mail_class_cases.py (made here, none copied). Every case goes
through `inboxd.pipeline.prepare`, the pure first stage of ingest, as raw bytes: reply
bodies (classes 1-3) are wrapped in a UTF-8 text/plain (or text/html) message and
scored on the stored new text; raw messages (classes 4-6) on the fields the case
names. A message that `prepare` cannot read at all (an "internal error" quarantine)
fails its case. `-v` prints every failing case with what came out; `--corpora` also
runs every file of ../shared/corpora through `prepare` and counts internal errors and
fallback uses. This file is the one home of the scoring rules;
tests/test_mail_classes.py imports it.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from mail_class_cases import CLASS_NAMES, RAW_CASES, TEXT_CASES, RawCase, TextCase  # noqa: E402

from inboxd.pipeline import prepare  # noqa: E402


def reply_message(body: str, html: bool = False) -> bytes:
    """A reply body as the raw UTF-8 message a client would send (HTML-only if `html`)."""
    head = (
        "From: Carol <carol@customer.example>\r\nTo: support@support.example\r\n"
        "Subject: Re: order\r\nMessage-ID: <reply@customer.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/{'html' if html else 'plain'}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body.replace("\n", "\r\n").encode()


def check_text(case: TextCase) -> str | None:
    """None when the stored new text is the expected one, else what came out."""
    prepared = prepare(reply_message(case.body, case.html))
    if prepared.msg is None:
        return f"not read: {prepared.error or prepared.rejected}"
    got = "\n".join(line.rstrip() for line in prepared.new_text.split("\n")).strip("\n")
    want = "\n".join(line.rstrip() for line in case.expected.split("\n")).strip("\n")
    return None if got == want else repr(got)


def check_raw(case: RawCase) -> str | None:
    """None when every field the case names came out as expected, else the differences."""
    prepared = prepare(case.raw)
    msg = prepared.msg
    if msg is None:
        return f"not read: {prepared.error or prepared.rejected}"
    wrong: list[str] = []

    def expect(what: str, got: object, want: object) -> None:
        if want is not None and got != want:
            wrong.append(f"{what}={got!r} (want {want!r})")

    expect("subject", msg.subject, case.subject)
    expect("sender", msg.sender.email if msg.sender else "", case.sender)
    expect("name", msg.sender.name if msg.sender else "", case.sender_name)
    expect("problem", bool(msg.sender_problem), case.sender_problem)
    expect("files", tuple(a.filename for a in msg.attachments), case.filenames)
    expect("body", msg.text.strip(), case.body)
    return "; ".join(wrong) or None


def failures() -> list[tuple[int, str, str]]:
    """(class, case name, what came out) of every failing case."""
    out: list[tuple[int, str, str]] = []
    for text_case in TEXT_CASES:
        if (problem := check_text(text_case)) is not None:
            out.append((text_case.cls, text_case.name, problem))
    for raw_case in RAW_CASES:
        if (problem := check_raw(raw_case)) is not None:
            out.append((raw_case.cls, raw_case.name, problem))
    return out


def corpora_fallbacks(corpora: Path) -> tuple[int, int, Counter[str]]:
    """(messages, "internal error" readings, degraded fields by name) over every whole
    message of the corpora: the fallback counter of issue #10, class 4."""
    messages, errors, fields = 0, 0, Counter[str]()
    for path in sorted(corpora.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in _MESSAGE_SUFFIXES:
            continue
        messages += 1
        prepared = prepare(path.read_bytes())
        errors += prepared.error is not None
        if prepared.msg is not None:
            fields.update(prepared.msg.degraded)
    return messages, errors, fields


_MESSAGE_SUFFIXES = {".eml", ".raw", ".msg", ".txt", ""}


def main(argv: list[str]) -> int:
    totals = Counter(c.cls for c in [*TEXT_CASES, *RAW_CASES])
    failed = failures()
    bad = Counter(cls for cls, _, _ in failed)
    print(f"{'class':<28} {'cases':>5} {'pass':>5} {'score':>6}")
    for cls in sorted(totals):
        passed = totals[cls] - bad[cls]
        label = f"{cls}. {CLASS_NAMES[cls]}"
        print(f"{label:<28} {totals[cls]:>5} {passed:>5} {passed / totals[cls]:>6.0%}")
    all_cases = sum(totals.values())
    print(f"{'TOTAL':<28} {all_cases:>5} {all_cases - len(failed):>5}")
    if "--corpora" in argv:
        messages, errors, fields = corpora_fallbacks(ROOT.parent / "shared" / "corpora")
        print(
            f"corpora: {messages} files, {errors} internal errors, "
            f"{sum(fields.values())} degraded fields {dict(fields)}"
        )
    if "-v" in argv:
        for cls, name, problem in failed:
            print(f"  [{cls}] {name}: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
