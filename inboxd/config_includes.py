"""config_includes.py: the files inboxd.toml names, read into its document before it is
checked: the `[[rules]]` of `[inboxd] rules_files`. Reads files; knows no model.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from inboxd.errors import ConfigError


def with_rules_files(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Append the `[[rules]]` of `[inboxd] rules_files` (globs, relative to the config's
    folder, read in name order) to the config's own rules."""
    section = data.get("inboxd")
    patterns = section.get("rules_files", ()) if isinstance(section, dict) else ()
    if not patterns or not isinstance(patterns, list | tuple):
        return data
    rules = list(data.get("rules", ()))
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue  # the model check names the bad value
        full = Path(pattern).expanduser()
        root, glob = (
            (full.anchor, str(full)[len(full.anchor) :])
            if full.is_absolute()
            else (base_dir, pattern)
        )
        found = sorted(Path(root).glob(glob))
        if not found:
            raise ConfigError(f"[inboxd] rules_files: {pattern!r} matches no file")
        for path in found:
            try:
                extra = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read rules: {exc}") from None
            if set(extra) - {"rules"}:
                keys = ", ".join(sorted(set(extra) - {"rules"}))
                raise ConfigError(f"{path}: a rules file holds only [[rules]], not {keys}")
            rules.extend(extra.get("rules", ()))
    return {**data, "rules": rules}
