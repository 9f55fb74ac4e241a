"""Logging of every streamfleet process: JSON lines when stderr is not a terminal, text when it
is; every line about a restream carries its id, node and generation.

Log about a restream with `extra=about(restream_id, generation=..., node=...)`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
CONTEXT = ("restream_id", "node", "generation")
# Chatter at INFO: a line per control message and per beat tick, per HTTP client request, per
# request the API answers (uvicorn's access log: `streamfleet api` runs without it, and
# adopting uvicorn's loggers must not turn it back on; the API's own metrics count requests).
_QUIET = (
    "uvicorn.access",
    "celery.worker.strategy",
    "celery.app.trace",
    "celery.beat",
    "pgserver",
    "httpx",
    "httpx2",
)
# Loggers that bring their own handlers: make them go through ours.
_ADOPTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.beat")


def about(
    restream_id: str, *, generation: int | None = None, node: str | None = None
) -> dict[str, Any]:
    """The `extra` of a log call about one restream."""
    return {"restream_id": restream_id, "generation": generation, "node": node}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key in CONTEXT if (value := getattr(record, key, None)) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the restream context, errors."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the restream context appended in brackets."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if not context:
            return line
        return f"{line} [{' '.join(f'{k}={v}' for k, v in context.items())}]"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the process's real stderr, whatever `sys.stderr` was replaced with (Celery
    redirects it into its logger; test runners swap and close it)."""

    def __init__(self) -> None:
        super().__init__(sys.__stderr__)

    @property
    def stream(self) -> object:
        return sys.__stderr__

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def wants_json(log_format: str) -> bool:
    if log_format in ("json", "text"):
        return log_format == "json"
    stream = sys.__stderr__
    return not (stream is not None and stream.isatty())


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    """Log to stderr at `level` (`log_format`: auto, json or text); idempotent."""
    root = logging.getLogger()
    formatter = JsonFormatter() if wants_json(log_format) else TextFormatter()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(level.upper())
    for name in _ADOPTED:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
