"""Parse FFmpeg's `-progress` output and derive live rates from it. Pure.

FFmpeg writes blocks of `key=value` lines, each ending with `progress=continue` (or `end`).
Values may be `N/A` or padded with spaces (`bitrate= 800.1kbits/s`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressBlock:
    """One progress report. Counters are cumulative since FFmpeg started."""

    frame: int | None
    fps: float | None
    bitrate_kbps: float | None  # FFmpeg's own average since start
    total_size_bytes: int | None
    out_time_us: int | None
    dup_frames: int
    drop_frames: int
    speed: float | None
    ended: bool  # `progress=end`: FFmpeg is finishing
    # A restream with continuity (`worker.continuity` adds them): which input is on air
    # (primary, backup, slate), since when (Unix time) and why.
    on_air: str | None = None
    on_air_since: float | None = None
    on_air_reason: str | None = None


def _number(raw: str | None, suffix: str = "") -> float | None:
    if raw is None:
        return None
    raw = raw.strip().removesuffix(suffix).strip()
    if not raw or raw == "N/A":
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def _integer(raw: str | None) -> int | None:
    value = _number(raw)
    return None if value is None else int(value)


class ProgressParser:
    """Feed lines in; get a `ProgressBlock` back whenever a block completes."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed(self, line: str) -> ProgressBlock | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        key = key.strip()
        if key != "progress":
            self._fields[key] = value
            return None
        fields, self._fields = self._fields, {}
        return ProgressBlock(
            frame=_integer(fields.get("frame")),
            fps=_number(fields.get("fps")),
            bitrate_kbps=_number(fields.get("bitrate"), "kbits/s"),
            total_size_bytes=_integer(fields.get("total_size")),
            out_time_us=_integer(fields.get("out_time_us") or fields.get("out_time_ms")),
            dup_frames=_integer(fields.get("dup_frames")) or 0,
            drop_frames=_integer(fields.get("drop_frames")) or 0,
            speed=_number(fields.get("speed"), "x"),
            ended=value.strip() == "end",
            on_air=fields.get("on_air"),
            on_air_since=_number(fields.get("on_air_since")),
            on_air_reason=fields.get("on_air_reason"),
        )


def advanced(previous: ProgressBlock | None, current: ProgressBlock) -> bool:
    """True when `current` shows *output* progress over `previous`: bytes written or media
    time muxed. Frames fed to an encoder do not count (an encoder may buffer them while its
    output is stuck). This is what resets the stall watchdog."""
    pairs = (
        (previous.total_size_bytes if previous else None, current.total_size_bytes),
        (previous.out_time_us if previous else None, current.out_time_us),
    )
    return any(now is not None and now > (before or 0) for before, now in pairs)


def flowing(block: ProgressBlock) -> bool:
    """True once media flows: frames processed or output written. FFmpeg opens its inputs and
    outputs before the first frame, so a frame counted means both ends are connected. This is
    what marks a restream running."""
    return any(
        value is not None and value > 0
        for value in (block.frame, block.total_size_bytes, block.out_time_us)
    )


class RateWindow:
    """Live output bitrate over a sliding window of (media time, bytes written) samples.

    Media time rather than wall time: the result is the bitrate of the stream itself, the
    figure a viewer or a CDN ingest sees, whatever the speed of the process.
    """

    def __init__(self, window: int = 5) -> None:
        self._samples: deque[tuple[int, int]] = deque(maxlen=window + 1)

    def add(self, block: ProgressBlock) -> None:
        if block.out_time_us is None or block.total_size_bytes is None:
            return
        if self._samples and block.out_time_us <= self._samples[-1][0]:
            return
        self._samples.append((block.out_time_us, block.total_size_bytes))

    def bitrate_kbps(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) * 8 / ((t1 - t0) / 1e6) / 1000
