"""charsets.py: turn the bytes of real mail into the text its sender meant.

Pure; never touches the DB. Mail in the wild labels its charset wrongly more often than
one would think; each rule below is a habit of real clients:

- GB2312 labels on GBK text (Outlook and Foxmail write 镕 or 喆 under "gb2312"), so the
  GB family is always decoded as GB18030, which contains both.
- Big5 labels on Big5-HKSCS text, Shift_JIS labels on CP932 text (①, ㈱), EUC-KR labels
  on CP949 text: each is decoded with the superset Windows and Hong Kong clients use.
- ISO-8859-1 labels on windows-1252 text (€, curly quotes): WHATWG decodes latin1 as
  cp1252 and so do we.
- UTF-8 sent under a single-byte label or "us-ascii": valid multi-byte UTF-8 almost never
  happens by chance in a single-byte text, so a body that is valid UTF-8 is read as UTF-8.
- Unknown or missing labels: UTF-8, then a statistical guess (charset-normalizer), then
  cp1252, which never fails.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from functools import lru_cache

from charset_normalizer import from_bytes

from inboxd.mail.plausible import common_share, latin_plausible, looks_written, strong_reading

# Labels mapped to the codec that decodes what clients really send under them.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "chinese": "gb18030",
    "gb18030": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "cp950": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "euc-jp": "euc_jis_2004",
    "x-euc-jp": "euc_jis_2004",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "korean": "cp949",
    "windows-949": "cp949",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    # Hebrew and Arabic "logical"/"explicit" order variants: same bytes, no Python alias.
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-8-e": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-6-e": "iso8859_6",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}

# ISO-2022-JP has several extensions that clients use under the one label; these codecs
# are tried in order and the first that decodes cleanly wins.
_ISO2022JP = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3")

# Multi-byte CJK codecs: a declared one is trusted before UTF-8 is tried, because short
# CJK texts are sometimes valid UTF-8 by accident.
_MULTIBYTE = {"gb18030", "hz", "big5hkscs", "cp932", "euc_jis_2004", "cp949", "utf-16", "utf-32"}

_LABEL_JUNK = re.compile(r"""^[\s"'<]+|[\s"'>;]+$""")


@lru_cache(maxsize=512)
def resolve_charset(label: str | None) -> str | None:
    """Return the Python codec for a MIME charset label, or None when it is unknown."""
    if not label:
        return None
    name = _LABEL_JUNK.sub("", label).lower()
    # RFC 2231 language suffixes ("utf-8*en") and stray parameters.
    name = name.split("*", 1)[0].split(";", 1)[0].strip()
    if not name:
        return None
    if name in _SUPERSETS:
        return _SUPERSETS[name]
    if name.startswith("iso-2022-jp") or name in {"csiso2022jp", "jis"}:
        return "iso2022_jp"
    for prefix, codec in (("windows-", "cp"), ("win-", "cp"), ("x-cp", "cp"), ("cp-", "cp")):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            name = codec + name[len(prefix) :]
    try:
        codec_name = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    # Python aliases some labels to codecs that are not text encodings for mail purposes.
    if codec_name in {"base64", "quopri", "uu", "zlib", "bz2", "hex", "rot-13", "undefined"}:
        return None
    return _SUPERSETS.get(codec_name, codec_name)


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def _guess(data: bytes) -> str | None:
    # Western text has a few accented letters and curly quotes among ASCII; a statistical
    # guess on so little evidence is often wrong (it picks cp1250 for "It’s €5"), so such
    # text is read as windows-1252. Greek, Cyrillic and CJK words are runs of high bytes.
    if not _HIGH_RUN.search(data) and (text := _try(data, "cp1252")) is not None:
        return text
    best = from_bytes(data[:200_000]).best()
    if best is None:
        return None
    codec = _SUPERSETS.get(best.encoding, best.encoding)
    return _try(data, codec)


_HIGH_RUN = re.compile(rb"[\x80-\xff]{3,}")
_ISO2022_SEGMENT = re.compile(rb"\x1b(\$B|\$@|\(B|\(J|\(I)")


def _iso2022jp_via_euc(data: bytes) -> str | None:
    """ISO-2022-JP with Windows (CP50220) extensions, which Python has no codec for.

    Outlook and other Windows mailers put NEC row-13 characters (①, ㈱, Ⅲ) in JIS X 0208
    escapes. Each escape segment is re-expressed in EUC, and EUC-JIS-2004, whose JIS X
    0213 plane includes row 13, decodes the result.
    """
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in _ISO2022_SEGMENT.finditer(data):
        out += _euc_segment(data[pos : match.start()], mode)
        mode = match.group(1)
        pos = match.end()
    out += _euc_segment(data[pos:], mode)
    return _try(bytes(out), "euc_jis_2004")


def _euc_segment(chunk: bytes, mode: bytes) -> bytes:
    if mode in (b"$B", b"$@"):
        return bytes(b | 0x80 if b not in (0x0A, 0x0D) else b for b in chunk)
    if mode == b"(I":
        return b"".join(b"\x8e" + bytes([b | 0x80]) for b in chunk)
    return chunk


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode a body (or header) whose label may be wrong, unknown or missing."""
    if not data:
        return ""
    if data.isascii() and b"\x1b" not in data and b"+" not in data:
        return data.decode("ascii")
    codec = resolve_charset(charset)
    if codec == "iso2022_jp" or (codec is None and b"\x1b$" in data):
        for candidate in _ISO2022JP:
            if (text := _try(data, candidate)) is not None:
                return text
        if (text := _iso2022jp_via_euc(data)) is not None:
            return text
    if data.isascii() and codec not in {"utf-7", "hz"} and b"\x1b" not in data:
        return data.decode("ascii")
    if codec in _MULTIBYTE and (text := _try(data, codec)) is not None:
        return text
    if (text := _try(data, "utf-8")) is not None:
        return text
    # "us-ascii" and "iso-8859-1" are what many mailers write when they do not know; a
    # Big5 or KOI8 text under them (enmime's big5 fixture) shows runs of high bytes.
    # The label is still believed unless its reading is implausible (plausible.py):
    # "aaäöüßad" is German even though its bytes are valid GBK.
    weak = codec == "cp1252" and _HIGH_RUN.search(data) and not _says_cp1252(charset)
    if weak:
        declared = None if _says_ascii(charset) else _try(data, codec or "cp1252")
        if declared is not None and latin_plausible(declared):
            return declared
        if (text := strong_reading(data)) is not None:
            return text
    if codec is not None and not weak and (text := _try(data, codec)) is not None:
        return text
    if (text := _guess(data)) is not None:
        return text
    return data.decode(codec or "cp1252", errors="replace")


def decode_header_bytes(data: bytes, hint: str | None) -> str:
    """Raw 8-bit bytes in a header, where no label applies and `hint` is only a guess.

    RFC 6532 allows UTF-8 there, and mail clients send it ("Grüße" from a German
    customer whose body is GB2312); Foxmail sends GBK under a GBK body. The body's
    charset is only believed over a valid UTF-8 reading when that reading looks like
    nobody's writing and the hinted one is made of common characters.
    """
    codec = resolve_charset(hint)
    if codec in _MULTIBYTE and (utf8 := _try(data, "utf-8")) is not None:
        hinted = _try(data, codec)
        if hinted is not None and common_share(hinted) >= 0.9 and not looks_written(utf8):
            return hinted
        return utf8
    return decode_bytes(data, hint)


def _says_ascii(label: str | None) -> bool:
    # A us-ascii label on 8-bit bytes is certainly wrong: there is nothing to believe.
    return _LABEL_JUNK.sub("", label or "").lower() in {"us-ascii", "ascii", "ansi_x3.4-1968"}


def _says_cp1252(label: str | None) -> bool:
    name = _LABEL_JUNK.sub("", label or "").lower()
    return name in {"windows-1252", "cp1252", "x-cp1252", "win-1252"}


# --- headers ---------------------------------------------------------------------------

# An RFC 2047 encoded word, read leniently: clients put them inside quoted strings, next
# to letters, and with spaces in Q text; RFC 2231 language tags ("utf-8*en") occur too.
_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?\s]{1,40})\?(?P<enc>[bBqQ])\?(?P<text>[^?]*?)\?=",
)
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_FOLD = re.compile(r"\r?\n[ \t]*|\r")


def _text_bytes(text: str, charset: str) -> bytes:
    """The bytes a client put in an encoded word's text.

    They should be ASCII, but clients put raw 8-bit bytes there too
    ("=?iso-8859-1?Q?J<0xFC>rgen?="): the parser hands them over as surrogate escapes,
    or, when the header was decoded as a whole first (display names, filenames), as
    the characters they stood for, which are encoded back in the word's own charset.
    """
    if text.isascii():
        return text.encode("ascii")
    out = bytearray()
    codec = resolve_charset(charset) or "utf-8"
    for char in text:
        if char.isascii():
            out.append(ord(char))
        elif "\udc80" <= char <= "\udcff":
            out.append(ord(char) - 0xDC00)
        else:
            try:
                out += char.encode(codec)
            except (UnicodeError, LookupError):
                out += char.encode("utf-8", "surrogatepass")
    return bytes(out)


def _word_bytes(enc: str, text: str, charset: str = "utf-8") -> bytes:
    if enc in "bB":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            # A stray trailing character: drop it and decode what is there.
            return base64.b64decode(cleaned[: len(cleaned) // 4 * 4 - 4] or "")
    # Q: "_" is a space, =XX a byte; a lone "=" stays as it is.
    out = bytearray()
    i = 0
    raw = _text_bytes(text, charset)
    while i < len(raw):
        c = raw[i]
        if c == 0x5F:
            out.append(0x20)
        elif c == 0x3D and i + 2 < len(raw) + 0 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(c)
        i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(chr(b) in "0123456789abcdefABCDEF" for b in pair)


def _raw_text(chunk: str, hint: str | None) -> str:
    """Plain header text; 8-bit bytes arrive as surrogate escapes from the parser."""
    if "\x1b" in chunk:
        # Old Japanese mailers put raw ISO-2022-JP (7-bit, with escapes) in headers.
        return decode_bytes(chunk.encode("ascii", "surrogateescape"), "iso-2022-jp")
    if chunk.isascii():
        return chunk
    try:
        data = chunk.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return chunk
    return decode_header_bytes(data, hint)


def decode_header(value: str | bytes | None, hint: str | None = None) -> str:
    """Decode a header value to one clean line: no CR, LF, NUL or other control characters.

    `hint` is the charset to try for raw 8-bit bytes (the body's charset is a good one).
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", "surrogateescape")
    value = _FOLD.sub(" ", value)
    pieces: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    last_end = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            pieces.append(decode_bytes(bytes(pending), pending_charset or "utf-8"))
        pending = bytearray()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[last_end : match.start()]
        charset = match.group("charset").split("*", 1)[0]
        data = _word_bytes(match.group("enc"), match.group("text"), charset)
        adjacent = pending_charset is not None and _BETWEEN_WORDS.match(between)
        if adjacent and (resolve_charset(charset) == resolve_charset(pending_charset)):
            # A multi-byte character split across two words is joined here before decoding.
            pending.extend(data)
        else:
            flush()
            if not adjacent:
                pieces.append(_raw_text(between, hint))
            pending_charset = charset
            pending.extend(data)
        last_end = match.end()
    flush()
    pieces.append(_raw_text(value[last_end:], hint))
    return clean_header_text("".join(pieces))


def clean_header_text(text: str) -> str:
    """One line, no control characters, single spaces: safe to show and to store."""
    text = _CONTROL.sub(" ", text.replace("\t", " "))
    return re.sub(r" {2,}", " ", text).strip()
