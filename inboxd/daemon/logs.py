"""logs.py: where inboxd's log lines go, per `[log]`: a file (rotated by size, or left to
logrotate), stderr under `inboxd serve`, as text or as JSON lines for log shippers.

Call sites log with one mapping as the argument —
`log.info("message %(message_id)s: %(result)s", {"message_id": ..., "result": ...})` —
which stdlib logging formats as usual; the JSON format also copies the mapping's keys
into the line, so a shipper can filter on `result` or `ticket` without parsing text.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from inboxd.config import Config

ROOT = "inboxd"
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TERMINAL_TEXT = "%(asctime)s %(levelname)s %(message)s"
# Keys a line's own fields may not overwrite.
_RESERVED = {"at", "level", "logger", "message", "traceback"}


class OneLine(logging.Formatter):
    """Text without the traceback: the terminal gets one line per problem (the file
    handler, which formats the same record on its own, keeps it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = saved


class JsonLines(logging.Formatter):
    """One JSON object per line: at, level, logger, message, the call's fields, traceback."""

    def __init__(self, tracebacks: bool = True) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if isinstance(record.args, Mapping):
            line.update({k: v for k, v in record.args.items() if k not in _RESERVED})
        if record.exc_info and self.tracebacks:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_file(cfg: Config) -> Path | None:
    """The log file of `[log] file`: "" is data_dir/inboxd.log, "-" is none (stderr only,
    for journald)."""
    value = cfg.log.file
    if value == "-":
        return None
    return cfg.path(value) if value else cfg.data_dir / "inboxd.log"


def configure(cfg: Config, *, terminal: bool = False) -> None:
    """Send inboxd's log where `[log]` says. Called again (another config in the same
    process, as in tests), it replaces what it installed before."""
    root = logging.getLogger(ROOT)
    for handler in [h for h in root.handlers if getattr(h, "inboxd_owned", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(cfg.log.level.upper())
    # Our handlers only: a library's root handler would print every line a second time.
    root.propagate = False
    path = log_file(cfg)
    json_lines = cfg.log.format == "json"
    if path is not None:
        formatter = JsonLines() if json_lines else logging.Formatter(TEXT)
        _add(root, _file_handler(cfg, path), formatter)
    if terminal:
        # Tracebacks stay in the file (when there is one); the terminal gets one line.
        keep = path is None
        formatter = (
            JsonLines(tracebacks=keep)
            if json_lines
            else (logging.Formatter if keep else OneLine)(TERMINAL_TEXT)
        )
        _add(root, logging.StreamHandler(sys.stderr), formatter)


def _file_handler(cfg: Config, path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.log.max_bytes == 0:
        # Rotation left to logrotate: reopen the file when it is moved away.
        return logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    return logging.handlers.RotatingFileHandler(
        path, maxBytes=cfg.log.max_bytes, backupCount=cfg.log.backups, encoding="utf-8"
    )


def _add(root: logging.Logger, handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    handler.inboxd_owned = True  # type: ignore[attr-defined]
    root.addHandler(handler)
