"""A supervisor observer that remembers what it was told, and jobs of the fake FFmpeg."""

from __future__ import annotations

import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from common.lifecycle.reports import Report
from worker.job import Job, Limits
from worker.retry import RetryPolicy

FAKE = str(Path(__file__).parents[1] / "fixtures" / "fake_ffmpeg.py")

FAST = Limits(
    stall_timeout_s=5.0,
    stop_grace_s=2.0,
    input_loss_s=1.5,
    stderr_tail_lines=40,
    retry=RetryPolicy(
        budget=3,
        window_s=60.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        source_retry_max_s=3.0,
    ),
)


class Recorder:
    """An Observer that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _add(self, name: str, job: Job, **details: Any) -> None:
        with self._lock:
            self.events.append((name, job.generation, details))

    def names(self, generation: int | None = None) -> list[str]:
        with self._lock:
            return [n for n, g, _ in self.events if generation is None or g == generation]

    def last(self, name: str) -> dict[str, Any]:
        with self._lock:
            return next(d for n, _, d in reversed(self.events) if n == name)

    def report(self, job: Job, report: Report) -> None:
        details = {f.name: getattr(report, f.name) for f in fields(report)}
        self._add(type(report).__name__.lower(), job, **details)


def fake_job(mode: str, *args: str, generation: int = 1) -> Job:
    return Job("r1", generation, [sys.executable, FAKE, mode, *args])
