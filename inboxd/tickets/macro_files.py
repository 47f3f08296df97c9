"""macro_files.py: where macro NAME's file is, and which language variant a customer gets.

A macro is `NAME.txt` with optional variants beside it (`refund.zh-Hans.txt`, SPEC §10.8).
The admin's folder ([inboxd] templates_dir/macros) comes before the bundled one, and the
first folder that has any file of NAME holds all of its variants: an admin who rewrote
`refund.txt` does not want the bundled Chinese text of the old wording sent to Chinese
customers. The tag logic is inboxd.languages', so zh-TW means zh-Hant here as everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from inboxd.errors import InvalidValue
from inboxd.languages import normalized_tag, variant
from inboxd.render import BUNDLED

MACRO_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class MacroMissing(Exception):
    """No file of the macro suits: the message says what was looked for."""


@dataclass(frozen=True)
class MacroFile:
    name: str
    language: str  # the variant's tag, "" for the base file NAME.txt
    path: Path
    source: str

    @property
    def filename(self) -> str:
        return self.path.name


def folders(macros_dir: str) -> list[Path]:
    """The admin's folder first (its macros win), then the ones shipped with inboxd."""
    return [Path(f) for f in (macros_dir, str(BUNDLED / "macros")) if f]


def _split(path: Path) -> tuple[str, str] | None:
    """(name, variant tag) of a macro file name; None for a file that is not a macro."""
    name, _, tag = path.stem.partition(".")
    if not MACRO_NAME.fullmatch(name):
        return None
    if not tag:
        return name, ""
    try:
        return name, normalized_tag(tag)
    except InvalidValue:
        return None


def variants(folder: Path, name: str) -> dict[str, Path]:
    """The files of macro `name` in `folder`, by variant tag ("" = NAME.txt)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob(f"{name}.*")):
        split = _split(path) if path.suffix == ".txt" else None
        if split is not None and split[0] == name and path.is_file():
            found[split[1]] = path
    return found


def find(macros_dir: str, name: str, language: str | None) -> MacroFile:
    """The file of macro `name` for a customer of `language` (None: the base file).

    Raises MacroMissing when there is no such macro, or only variants for other languages."""
    if not MACRO_NAME.fullmatch(name):
        raise MacroMissing(f"no macro {name!r}")
    for folder in folders(macros_dir):
        found = variants(folder, name)
        if not found:
            continue
        tag = variant(language, [t for t in found if t], default="")
        if tag not in found:
            raise MacroMissing(
                f"macro {name!r} has no variant for {language or 'no language'} and no "
                f"{name}.txt to fall back on (it has {', '.join(sorted(found))})"
            )
        path = found[tag]
        return MacroFile(name, tag, path, path.read_text(encoding="utf-8"))
    raise MacroMissing(f"no macro {name!r} (templates/macros/{name}.txt)")


def macro_names(macros_dir: str) -> list[str]:
    """Every macro `#macro NAME` can insert, each once however many variants it has,
    sorted (what the web's picker and `inboxd macro list` offer)."""
    names = set()
    for folder in folders(macros_dir):
        if folder.is_dir():
            for path in folder.glob("*.txt"):
                split = _split(path)
                if split is not None:
                    names.add(split[0])
    return sorted(names)


def macro_languages(macros_dir: str, name: str) -> list[str]:
    """The variant tags of macro `name` that would be used ("" = the base file)."""
    for folder in folders(macros_dir):
        if found := variants(folder, name):
            return sorted(found)
    return []
