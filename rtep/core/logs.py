"""Structured logging: one JSON object per line on stderr, with key-value context.

``get_logger(name).info("message", key=value)`` keeps call sites short and output machine-readable.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rtep.core.settings import get_settings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "ctx", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class StructLogger:
    """A thin wrapper that turns keyword arguments into structured fields."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, msg: str, exc_info: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, extra={"ctx": fields}, exc_info=exc_info)

    def debug(self, msg: str, **fields: Any) -> None:
        """Log at debug level with structured fields."""
        self._log(logging.DEBUG, msg, False, fields)

    def info(self, msg: str, **fields: Any) -> None:
        """Log at info level with structured fields."""
        self._log(logging.INFO, msg, False, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        """Log at warning level with structured fields."""
        self._log(logging.WARNING, msg, False, fields)

    def error(self, msg: str, exc_info: bool = False, **fields: Any) -> None:
        """Log at error level with structured fields (and the traceback when asked)."""
        self._log(logging.ERROR, msg, exc_info, fields)


def _configure() -> None:
    root = logging.getLogger("rtep")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root.addHandler(handler)
    root.setLevel(get_settings().log_level.upper())
    root.propagate = False


def log_to_file(path: Path) -> None:
    """Send this process's rtep logs to ``path`` (appended) instead of stderr.

    ``rtep run`` owns the terminal for its console; its own JSON lines go to ``.run/run.log``
    beside the children's.
    """
    _configure()
    root = logging.getLogger("rtep")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(_JsonFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)


def get_logger(name: str) -> StructLogger:
    """A structured logger under the ``rtep`` hierarchy (JSON lines on stderr)."""
    _configure()
    if not name.startswith("rtep"):
        name = f"rtep.{name}"
    return StructLogger(logging.getLogger(name))
