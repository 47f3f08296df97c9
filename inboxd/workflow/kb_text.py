"""kb_text.py: text to search terms, the same way for an article and for a question. Pure.

The default full-text tokenizers fail on Chinese: SQLite's unicode61 treats a run of Han
characters as one token, its trigram mode misses two-character words such as 密码 and
发票, and PostgreSQL's default parser is no better. So terms are made here:

- NFKC and casefold (full-width letters and digits become ASCII), then Traditional to
  Simplified Chinese with OpenCC's Taiwan-phrases table, so 忘記密碼 and 忘记密码, 軟體 and
  软件, meet on one spelling;
- a run of Han characters gives jieba's words (rjieba, search mode) **and** every bigram
  of the run, so a word jieba cut differently, or a name it does not know, is still found;
- a run with kana (Japanese, which jieba does not segment) gives its bigrams;
- any other word is stemmed with the Snowball stemmer of the text's language (PyStemmer),
  so "passwords" finds "password" and "Rechnungen" finds "Rechnung".

No database, no files: tested with strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache

import opencc
import rjieba
import Stemmer

# Han (with the compatibility block and extension A), kana and the prolonged sound mark.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff"
_RUN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}_]+")
_KANA = re.compile("[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Language tag (SPEC §10.8) -> Snowball algorithm. Chinese and Japanese articles still
# contain Latin words (product names, "VPN"); they are stemmed as English.
STEMMERS = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "sv": "swedish", "da": "danish", "no": "norwegian",
    "nb": "norwegian", "fi": "finnish", "ru": "russian", "pl": "polish", "tr": "turkish",
}  # fmt: skip


def base_language(language: str) -> str:
    """'zh-Hant' -> 'zh', 'en-GB' -> 'en'."""
    return language.split("-", 1)[0].split("_", 1)[0].lower()


# Function words that match every article in a small KB ("my", "the", "from" made an
# account article the answer to a question about a zebra). Only words that never carry
# the topic: "order", "open" and "help" stay, unlike in the general stop-word lists.
STOPWORDS = {
    "en": """a an and are as at be been but by can could do does did for from had has have
        how i i'm if in into is it it's its me my no not of on or our so than that the their
        them then there these they this to us was we were what when where which who why will
        with would you your hello hi please thanks dear""",
    "de": """aber als am an auch auf aus bei bin bis bitte da das dass dem den der des die
        doch du ein eine einen einer es für hallo hat ich ihr im in ist ja kann mein meine mit
        nicht noch nur oder sein sich sie sind so über um und uns von vor war was wie wir zu""",
    "fr": """au aux avec bonjour ce ces dans de des du elle en est et il je la le les leur ma
        mais me mes mon ne nous on ou par pas pour qu que qui sa se ses son sur ta te tu un une
        vous votre""",
    "es": """al como con de del el ella en es esta este hola la las le lo los me mi mis no
        nos o para pero por que se su sus te tu un una y yo""",
}
_STOP = {lang: frozenset(words.split()) for lang, words in STOPWORDS.items()}


@cache
def _converter() -> opencc.OpenCC:
    # Built on first use, not at import: loading the dictionaries takes a few ms.
    return opencc.OpenCC("tw2sp")


@cache
def _stemmer(algorithm: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(algorithm)


# After the fold, variants that Simplified writers use side by side: OpenCC turns 帳戶
# into 帐户, while mainland articles write 账户 (both are correct Simplified).
_VARIANTS = str.maketrans({"帐": "账"})


def normalize(text: str) -> str:
    """NFKC, casefold, and Traditional Chinese folded to Simplified."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if _HAN.search(text):
        text = _converter().convert(text).translate(_VARIANTS)
    return text


def terms(text: str, language: str = "en") -> list[str]:
    """The search terms of a text, in order, repeats kept (BM25 counts them)."""
    algorithm = STEMMERS.get(base_language(language), "english")
    words: list[str] = []
    latin: list[str] = []
    for run in _RUN.findall(normalize(text)):
        if _HAN.match(run) or _KANA.match(run):
            words.extend(_cjk_terms(run))
        elif len(run) > 1 or run.isdigit():
            latin.append(run)
    if latin:
        stop = _STOP.get(base_language(language), _STOP["en"])
        kept = [w for w in latin if w not in stop]
        words.extend(_stemmer(algorithm).stemWords(kept))
    return words


def _cjk_terms(run: str) -> Iterator[str]:
    if len(run) == 1:
        yield run
        return
    if not _KANA.search(run):
        # jieba's words of three characters or more; its two-character words are bigrams
        # below anyway, and single characters (了, 的, 我) say little.
        yield from (word for word in rjieba.cut_for_search(run) if len(word) > 2)
    yield from (run[i : i + 2] for i in range(len(run) - 1))
