"""command_tags: the command block at the top of an agent's new text, and nothing else (SPEC §6).

Names are read, not checked: whether `#stauts` exists is `commands.py`'s business.
"""

from __future__ import annotations

import random
import time

import pytest

from inboxd.mail.command_tags import CommandCall, extract_tags, parse_command_line, parse_commands

# Every command and alias in SPEC §6's table, with a typical argument list.
SPEC_COMMANDS = {
    "#status pending": ("status", ("pending",)),
    "#open": ("open", ()),
    "#pending": ("pending", ()),
    "#hold": ("hold", ()),
    "#solve": ("solve", ()),
    "#close": ("close", ()),
    "#reopen": ("reopen", ()),
    "#assign bob@example.com": ("assign", ("bob@example.com",)),
    "#assignee me": ("assignee", ("me",)),
    "#owner none": ("owner", ("none",)),
    "#take": ("take", ()),
    "#priority urgent": ("priority", ("urgent",)),
    "#low": ("low", ()),
    "#normal": ("normal", ()),
    "#high": ("high", ()),
    "#urgent": ("urgent", ()),
    "#tag billing vip": ("tag", ("billing", "vip")),
    "#untag vip": ("untag", ("vip",)),
    "#note": ("note", ()),
    "#internal": ("internal", ()),
    "#cc a@example.com b@example.com": ("cc", ("a@example.com", "b@example.com")),
    "#uncc a@example.com": ("uncc", ("a@example.com",)),
    "#merge 123": ("merge", ("123",)),
    "#spam": ("spam", ()),
    "#subject Printer on fire": ("subject", ("Printer", "on", "fire")),
    "#team billing": ("team", ("billing",)),
    "#due 2026-12-01": ("due", ("2026-12-01",)),
    "#snooze 3d": ("snooze", ("3d",)),
    "#macro refund-approved": ("macro", ("refund-approved",)),
    "#split": ("split", ()),
    "#move 42": ("move", ("42",)),
    "#undo": ("undo", ()),
    "#public": ("public", ()),
    "#help": ("help", ()),
}


def call(text: str) -> tuple[str, tuple[str, ...]]:
    parsed = parse_command_line(text)
    assert parsed is not None, text
    return parsed.name, parsed.args


def names(text: str, max_lines: int = 30) -> list[str]:
    return [c.name for c in extract_tags(text, max_lines)[0]]


def reply(text: str, max_lines: int = 30) -> str:
    return extract_tags(text, max_lines)[1]


# ---- one line ----


@pytest.mark.parametrize(("line", "expected"), SPEC_COMMANDS.items(), ids=list(SPEC_COMMANDS))
def test_every_spec_command_and_alias_parses(line: str, expected: tuple) -> None:
    assert call(line) == expected


@pytest.mark.parametrize(("line", "expected"), SPEC_COMMANDS.items(), ids=list(SPEC_COMMANDS))
def test_every_spec_command_is_found_at_the_top_of_a_reply(line: str, expected: tuple) -> None:
    calls, rest = extract_tags(f"{line}\n\nThanks, done.\n")
    assert [(c.name, c.args) for c in calls] == [expected]
    assert rest == "Thanks, done.\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#Assign me", ("assign", ("me",))),
        ("#STATUS Pending", ("status", ("Pending",))),  # arguments keep their case
        ("#sTaTuS on-hold", ("status", ("on-hold",))),
        ("#my_macro-2 x", ("my_macro-2", ("x",))),
        ("   #close", ("close", ())),  # leading indentation
        ("\t#close", ("close", ())),
        ("#status pending   ", ("status", ("pending",))),  # trailing spaces
        ("#tag   a \t b", ("tag", ("a", "b"))),  # runs of whitespace
    ],
)
def test_names_are_case_insensitive_and_whitespace_is_loose(line: str, expected: tuple) -> None:
    assert call(line) == expected


@pytest.mark.parametrize(
    "line",
    ["# heading", "#1", "#1 first point", "#!", "#!/bin/sh", "##status", "#", "#-x", "#_x", ""],
)
def test_hash_not_followed_by_a_letter_is_not_a_command(line: str) -> None:
    assert parse_command_line(line) is None


@pytest.mark.parametrize("line", ["status pending", "Re: #status", "> #close", "x#close"])
def test_a_line_not_starting_with_hash_is_not_a_command(line: str) -> None:
    assert parse_command_line(line) is None


@pytest.mark.parametrize(
    ("line", "name"),
    [("#stauts closed", "stauts"), ("#status: pending", "status:"), ("#close.", "close.")],
)
def test_unknown_or_mistyped_names_are_still_command_lines(line: str, name: str) -> None:
    # So the caller can reject the block and name the line, instead of the typo
    # reaching the customer as text.
    assert call(line)[0] == name


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ('"Bob Smith"', "Bob Smith"),  # straight
        ("“Bob Smith”", "Bob Smith"),  # English, Outlook/Apple Mail autocorrect
        ('"Bob Smith”', "Bob Smith"),  # only one end curled
        ('“Bob Smith"', "Bob Smith"),
        ("„Bob Smith“", "Bob Smith"),  # German
        ("„Bob Smith”", "Bob Smith"),  # Polish
        ("”Bob Smith”", "Bob Smith"),  # Swedish, Finnish
        ("‟Bob Smith”", "Bob Smith"),
        ("«Bob Smith»", "Bob Smith"),  # French
        ("« Bob Smith »", "Bob Smith"),  # French with spaces inside
        ("«\u00a0Bob Smith\u00a0»", "Bob Smith"),  # ... no-break spaces, as Word types them
        ("»Bob Smith«", "Bob Smith"),  # Danish
        ("‹Bob Smith›", "Bob Smith"),
        ("「Bob Smith」", "Bob Smith"),  # Japanese
        ("『Bob Smith』", "Bob Smith"),
        ("'Bob Smith'", "Bob Smith"),  # single, straight
        ("‘Bob Smith’", "Bob Smith"),  # single, curly
        ("‚Bob Smith‘", "Bob Smith"),  # German single
        ("＂Bob Smith＂", "Bob Smith"),  # full-width, from an IME
    ],
)
def test_quoted_arguments_of_every_kind(argument: str, expected: str) -> None:
    assert call(f"#assign {argument}") == ("assign", (expected,))
    assert call(f"#cc {argument} x@example.com") == ("cc", (expected, "x@example.com"))


def test_assign_bob_smith() -> None:
    assert call('#assign "Bob Smith"') == ("assign", ("Bob Smith",))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('#subject "Printer on fire', ("Printer on fire",)),
        ('#subject "Printer on fire   ', ("Printer on fire",)),
        ("#subject a “b c", ("a", "b c")),
        ("#subject 「返金について", ("返金について",)),
    ],
)
def test_an_unterminated_quote_takes_the_rest_of_the_line(line: str, expected: tuple) -> None:
    assert call(line) == ("subject", expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#subject ‘Bob’s printer’", ("Bob’s printer",)),  # apostrophe inside a word
        ("#subject 'Bob's printer'", ("Bob's printer",)),
        ("#subject Bob's printer", ("Bob's", "printer")),  # quotes only open an argument
        ('#subject say"hi"', ('say"hi"',)),
        ('#subject "Printer broken", please', ("Printer broken", ",", "please")),
        ('#subject ""', ("",)),  # an empty argument is kept, for the caller to refuse
    ],
)
def test_quotes_inside_words(line: str, expected: tuple) -> None:
    assert call(line) == ("subject", expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("＃status pending", ("status", ("pending",))),  # full-width number sign
        ("﹟status pending", ("status", ("pending",))),  # small number sign
        ("＃ｓｔａｔｕｓ　ｐｅｎｄｉｎｇ", ("status", ("pending",))),  # Japanese IME, full width
        ("＃ＡＳＳＩＧＮ　ｍｅ", ("assign", ("me",))),
        ("＃ｓｔａｔｕｓ　ｏｎ－ｈｏｌｄ", ("status", ("on-hold",))),
        ("＃ｔａｇ　ｂｉｌｌｉｎｇ　ｖｉｐ", ("tag", ("billing", "vip"))),
        ("＃ａｓｓｉｇｎ　「山田 太郎」", ("assign", ("山田 太郎",))),
        ("＃ａｓｓｉｇｎ　＂Ｂｏｂ　Ｓｍｉｔｈ＂", ("assign", ("Bob Smith",))),
    ],
)
def test_cjk_input_methods(line: str, expected: tuple) -> None:
    assert call(line) == expected


@pytest.mark.parametrize(
    "invisible",
    ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f"],
    ids=["ZWSP", "ZWNJ", "ZWJ", "WJ", "BOM", "SHY", "LRM", "RLM"],
)
@pytest.mark.parametrize(
    "template",
    ["{z}#status pending", "#{z}status pending", "#sta{z}tus pending", "#status{z} pending",
     "#status {z}pending", "#status pen{z}ding", "#status pending{z}", "{z}{z}＃{z}status pending"],
)  # fmt: skip
def test_zero_width_characters_are_ignored(invisible: str, template: str) -> None:
    assert call(template.format(z=invisible)) == ("status", ("pending",))


@pytest.mark.parametrize(
    "space",
    ["\u00a0", "\u3000", "\u2002", "\u2003", "\u2007", "\u2009", "\u200a", "\u202f"],
    ids=["NBSP", "ideographic", "en", "em", "figure", "thin", "hair", "narrow NBSP"],
)
def test_unicode_spaces_separate_arguments(space: str) -> None:
    assert call(f"{space}#tag{space}a{space}{space}b{space}") == ("tag", ("a", "b"))
    assert call(f'#assign "Bob{space}Smith"') == ("assign", ("Bob Smith",))


def test_the_line_is_kept_as_typed_for_error_mails() -> None:
    parsed = parse_command_line("  ＃ｓｔａｔｕｓ　ｐｅｎｄｉｎｇ  \r\n", line_no=7)
    assert parsed == CommandCall(
        name="status", args=("pending",), line="＃ｓｔａｔｕｓ　ｐｅｎｄｉｎｇ", line_no=7
    )


# ---- the block at the top of a reply ----


def test_a_block_and_a_reply() -> None:
    text = "#status pending\n#assign me\n\nHi Alice,\n\nI'm on it.\n\n-- \nBob\n"
    calls, rest = extract_tags(text)
    assert calls == [
        CommandCall("status", ("pending",), "#status pending", 1),
        CommandCall("assign", ("me",), "#assign me", 2),
    ]
    assert rest == "Hi Alice,\n\nI'm on it.\n\n-- \nBob\n"


def test_blank_lines_before_and_between_commands() -> None:
    text = "\n  \n#status pending\n\n\n#priority high\n \t\n#tag vip\n\nThanks\n"
    calls, rest = extract_tags(text)
    assert [(c.name, c.line_no) for c in calls] == [("status", 3), ("priority", 6), ("tag", 8)]
    assert rest == "Thanks\n"


def test_lines_of_only_invisible_characters_are_blank() -> None:
    text = "\ufeff\n#close\n\u200b\u00a0\n#spam\n\nGone.\n"
    assert names(text) == ["close", "spam"]
    assert reply(text) == "Gone.\n"


def test_a_hash_line_after_text_stays_text() -> None:
    text = "#note\nCalled the customer.\n#close\n#status solved\n"
    calls, rest = extract_tags(text)
    assert [c.name for c in calls] == ["note"]
    assert rest == "Called the customer.\n#close\n#status solved\n"


@pytest.mark.parametrize("text_line", ["# Summary", "#1 the printer", "#!", "## Steps"])
def test_a_heading_ends_the_block_and_stays_text(text_line: str) -> None:
    text = f"#status pending\n{text_line}\n#close\n"
    calls, rest = extract_tags(text)
    assert [c.name for c in calls] == ["status"]
    assert rest == f"{text_line}\n#close\n"


@pytest.mark.parametrize("text_line", ["# Summary", "#1 the printer"])
def test_a_reply_starting_with_a_heading_has_no_commands(text_line: str) -> None:
    text = f"{text_line}\n#close\n"
    assert extract_tags(text) == ([], text)


def test_the_remaining_text_is_untouched() -> None:
    body = "  Indented first line.  \n\n\n> a quote someone kept\n\n-- \nBob\nSent from my iPhone"
    assert reply("#close\n\n\n" + body) == body


def test_only_commands_give_an_empty_reply() -> None:
    assert extract_tags("#status solved\n\n#tag done\n\n\n") == (
        [
            CommandCall("status", ("solved",), "#status solved", 1),
            CommandCall("tag", ("done",), "#tag done", 3),
        ],
        "",
    )
    assert reply("#close") == ""


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "Thanks, that fixed it.\n\nBob\n",
        "\n\nHi,\r\n#close\r\n",  # leading blank lines are kept too
        "# Heading\n\n#status closed\n",
        "status closed\n",
    ],
)
def test_text_without_commands_comes_back_unchanged(text: str) -> None:
    assert extract_tags(text) == ([], text)


def test_windows_line_endings() -> None:
    text = "#status pending\r\n\r\n#assign “Bob Smith”\r\n\r\nHi Alice,\r\n\r\nBob\r\n"
    calls, rest = extract_tags(text)
    assert [(c.name, c.args, c.line) for c in calls] == [
        ("status", ("pending",), "#status pending"),
        ("assign", ("Bob Smith",), "#assign “Bob Smith”"),
    ]
    assert rest == "Hi Alice,\r\n\r\nBob\r\n"


def test_an_ime_typed_block() -> None:
    text = (
        "＃ｓｔａｔｕｓ　ｐｅｎｄｉｎｇ\n"
        "＃ａｓｓｉｇｎ　「山田 太郎」\n"
        "\n"
        "お問い合わせありがとうございます。\n"
    )
    calls, rest = extract_tags(text)
    assert [(c.name, c.args) for c in calls] == [
        ("status", ("pending",)),
        ("assign", ("山田 太郎",)),
    ]
    assert rest == "お問い合わせありがとうございます。\n"


def test_a_block_longer_than_max_lines_is_cut_and_the_rest_is_reply() -> None:
    text = "".join(f"#tag t{i}\n" for i in range(1, 36)) + "Done.\n"
    calls, rest = extract_tags(text)
    assert len(calls) == 30
    assert calls[-1].args == ("t30",)
    assert rest == "".join(f"#tag t{i}\n" for i in range(31, 36)) + "Done.\n"


def test_max_lines_counts_blank_lines_too() -> None:
    text = "\n\n#close\n#spam\nHi\n"
    assert names(text, max_lines=3) == ["close"]
    assert reply(text, max_lines=3) == "#spam\nHi\n"
    assert names(text, max_lines=2) == []
    assert extract_tags(text, max_lines=0) == ([], text)


def test_line_numbers_count_every_line_of_the_text() -> None:
    calls, _rest = extract_tags("\r\n#open\r\n\r\n\r\n#take\r\nok")
    assert [c.line_no for c in calls] == [2, 5]


# ---- a command text from the CLI or the web ----


def test_parse_commands_reads_every_line() -> None:
    assert parse_commands('#status pending\n\n#assign "Bob Smith"\n') == [
        CommandCall("status", ("pending",), "#status pending", 1),
        CommandCall("assign", ("Bob Smith",), '#assign "Bob Smith"', 3),
    ]


def test_parse_commands_marks_lines_that_are_not_commands_invalid() -> None:
    calls = parse_commands("#status pending\nstatus closed\n  \n# heading\r\n#close\nthanks")
    assert [(c.name, c.line, c.line_no) for c in calls] == [
        ("status", "#status pending", 1),
        ("", "status closed", 2),
        ("", "# heading", 4),
        ("close", "#close", 5),
        ("", "thanks", 6),
    ]
    assert all(c.args == () for c in calls if not c.name)


def test_parse_commands_has_no_line_limit_and_no_block() -> None:
    text = "hello\n" + "#tag x\n" * 100
    calls = parse_commands(text)
    assert len(calls) == 101
    assert calls[0].name == ""
    assert {c.name for c in calls[1:]} == {"tag"}


@pytest.mark.parametrize("text", ["", "\n", " \r\n\t\n\u200b"])
def test_parse_commands_of_nothing(text: str) -> None:
    assert parse_commands(text) == []


# ---- hostile input ----

# Characters that exercise every branch: quotes of every kind, spaces, invisibles,
# line breaks of every kind, lone surrogates, full-width forms and combining marks.
_ALPHABET = (
    "#＃﹟ aZ09-_:.!'\"“”„‟«»‹›「」『』‘’‚‛＂\r\n\t\v\f\x00\x1c\x85\u2028\u00a0\u3000"
    "\u200b\u200d\u00ad\ufeff\u202e\ud800\udfff\u0301ｓｔＡ１ß İﬁ山"
)


def _random_texts(count: int) -> list[str]:
    rng = random.Random(20260601)
    return [
        "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 80))) for _ in range(count)
    ]


@pytest.mark.parametrize("text", _random_texts(300))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    calls, rest = extract_tags(text)
    # The reply is always a tail of the text, and the text is untouched without commands.
    assert text.endswith(rest)
    if not calls:
        assert rest == text
    for parsed in calls + parse_commands(text):
        assert isinstance(parsed, CommandCall)
        assert all(isinstance(arg, str) for arg in parsed.args)
    for line in text.split("\n"):
        parse_command_line(line)


@pytest.mark.parametrize(
    "text",
    [
        "#subject " + "'a'b " * 200_000,  # a quote that never closes, over and over
        "#subject " + "“" * 500_000,
        "#tag " + "x " * 500_000,
        "#close\n" * 500_000,
        "\n" * 500_000 + "#close",
        "#close\n" + "\n" * 500_000 + "Hi",
        "\u200b" * 1_000_000,
    ],
    ids=["unclosed quotes", "many quotes", "many args", "many lines", "blank lines",
         "blank lines before reply", "invisible"],
)  # fmt: skip
def test_pathological_input_is_linear(text: str) -> None:
    started = time.perf_counter()
    extract_tags(text)
    parse_command_line(text)
    parse_commands(text[:200_000])
    assert time.perf_counter() - started < 5
