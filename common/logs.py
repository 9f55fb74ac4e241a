"""Logging set-up shared by every streamfleet process."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


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


# Chatter at INFO: a line per control message and per beat tick, embedded server notes.
_QUIET = (
    "celery.worker.strategy",
    "celery.app.trace",
    "celery.beat",
    "pgserver",
    "httpx",
    "httpx2",
)


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr at `level`; idempotent."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
