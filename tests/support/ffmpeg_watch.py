"""Watches the FFmpeg processes of a test, by the unique output URL each restream has."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Seen:
    pid: int
    first: float
    last: float


@dataclass
class FfmpegWatch:
    """Samples /proc every few milliseconds; remembers, per marker (a string unique to one
    restream's command line), every process seen and the most seen at once."""

    markers: list[str]
    period_s: float = 0.02
    processes: dict[str, dict[int, Seen]] = field(default_factory=lambda: defaultdict(dict))
    most_at_once: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FfmpegWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            counts: dict[str, int] = defaultdict(int)
            for pid, command in _ffmpeg_commands():
                for marker in self.markers:
                    if marker in command:
                        counts[marker] += 1
                        seen = self.processes[marker].setdefault(pid, Seen(pid, now, now))
                        seen.last = now
            for marker, count in counts.items():
                self.most_at_once[marker] = max(self.most_at_once[marker], count)
            time.sleep(self.period_s)

    def running(self, marker: str, *, within_s: float = 0.3) -> list[Seen]:
        now = time.time()
        return [s for s in self.processes[marker].values() if now - s.last < within_s]


def _ffmpeg_commands() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        argv = raw.split(b"\0")
        if argv and b"ffmpeg" in Path(argv[0].decode(errors="replace")).name.encode():
            found.append((int(entry.name), raw.replace(b"\0", b" ").decode(errors="replace")))
    return found
