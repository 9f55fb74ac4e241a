"""The input switch of a restream with continuity (`worker.continuity` runs it): which source
is on air, and its datagrams forwarded. Pure: a clock and a sender are given.

Every stage sends MPEG-TS datagrams to a loopback port of its own. The switch forwards the
datagrams of the input on air to the output stage, and chooses: the first input in order
(primary, backup) that delivered within `loss_s` (and, where the restream asks, is not black,
frozen or silent: `impair`), and while none does the slate. Of every source it keeps what came
since its last video key frame (a video packet with the random access indicator), and a switch
sends that first: the output stage decodes the new source from its key frame at once instead of
waiting for the next one (a source not yet seen since it came back goes on air at its first key
frame, the slate bridging). Back to the primary only once it has been well for `failback_s`
without a gap (never, if None); from the slate, to any input that is well.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

TS_PACKET = 188
VIDEO_PID = 0x100  # FFmpeg's mpegts muxer: the first stream mapped (the video) is PID 0x100
SLATE = "slate"
GOP_BYTES = 8 << 20  # kept of a source since its last key frame, at most


def video_in(datagram: bytes) -> tuple[bool, bool]:
    """Whether a datagram of MPEG-TS carries video, and whether it starts a video key frame
    (the random access indicator)."""
    video = False
    for at in range(0, len(datagram) - TS_PACKET + 1, TS_PACKET):
        packet = datagram[at : at + TS_PACKET]
        if packet[0] != 0x47 or ((packet[1] & 0x1F) << 8 | packet[2]) != VIDEO_PID:
            continue
        if packet[3] & 0x20 and packet[4] > 0 and packet[5] & 0x40:
            return True, True
        video = True
    return video, False


def key_frame(datagram: bytes) -> bool:
    return video_in(datagram)[1]


@dataclass
class Switch:
    """Chooses what is on air and forwards it. `clock` and `send` are given (tests).

    Of every source it keeps what it sent since its last video key frame (up to `GOP_BYTES`):
    a switch forwards that first, so the output stage can decode the new source at once instead
    of waiting for its next key frame (it decodes the burst and shows its latest picture)."""

    names: list[str]  # inputs in order, then the slate
    loss_s: float
    failback_s: float | None
    send: Any  # callable(bytes)
    clock: Any = time.monotonic
    on_air: str = SLATE
    since: float = field(default_factory=time.time)
    reason: str = "starting"
    pending: str | None = None  # chosen, waiting for its first key frame
    last: dict[str, float] = field(default_factory=dict)
    healthy_since: dict[str, float] = field(default_factory=dict)
    impaired: dict[str, str] = field(default_factory=dict)  # delivers, but black, frozen, ...
    gop: dict[str, list[bytes]] = field(default_factory=dict)
    gop_bytes: dict[str, int] = field(default_factory=dict)
    switches: deque[tuple[float, str, str]] = field(default_factory=lambda: deque(maxlen=100))

    def received(self, name: str, datagram: bytes) -> None:
        """A datagram of a source. Only video counts as delivering: a stage whose video has not
        appeared (FFmpeg found only the audio while it probed) is of no use on air."""
        now = self.clock()
        video, key = video_in(datagram)
        if video:
            if now - self.last.get(name, -1e9) >= self.loss_s:  # back after a loss: anew
                self.healthy_since[name] = now
                self.gop.pop(name, None)
            self.last[name] = now
        if key:
            self.gop[name], self.gop_bytes[name] = [datagram], len(datagram)
            if name == self.pending:
                self._take(name)
                return
        elif name in self.gop:
            self.gop_bytes[name] += len(datagram)
            if self.gop_bytes[name] > GOP_BYTES:
                del self.gop[name]  # too long a picture group: its next key frame, then
            else:
                self.gop[name].append(datagram)
        if name == self.on_air:
            self.send(datagram)

    def impair(self, name: str, what: str | None) -> None:
        """Whether an input that delivers is of any use (`what` it is: "black for 2 s")."""
        if what is None and self.impaired.pop(name, None) is not None:
            self.healthy_since[name] = self.clock()
        elif what is not None:
            self.impaired[name] = what

    def tick(self) -> None:
        """Choose again (called often, and after every datagram batch)."""
        now = self.clock()
        wanted, why = self._wanted(now)
        if wanted == self.on_air:
            self.pending = None
            return
        if wanted in self.gop:  # from its last key frame, at once
            self.reason = why
            self._take(wanted)
            return
        if wanted == self.pending:
            return
        self.pending, self.reason = wanted, why
        # Nothing (good) on air meanwhile: the slate, and the input at its first key frame.
        if self.on_air != SLATE and not self._delivers(self.on_air, now) and SLATE in self.gop:
            self._take(SLATE)
            self.pending, self.reason = wanted, why

    def _delivers(self, name: str, now: float) -> bool:
        return now - self.last.get(name, -1e9) < self.loss_s

    def _wanted(self, now: float) -> tuple[str, str]:
        inputs = self.names[:-1]
        lost = [n for n in inputs if not self._delivers(n, now) or n in self.impaired]
        on_air_rank = inputs.index(self.on_air) if self.on_air in inputs else len(inputs)
        for rank, name in enumerate(inputs):
            if name in lost:
                continue
            if rank < on_air_rank and self.on_air != SLATE:  # better than what is on air
                since = self.healthy_since.get(name, now)
                if self.failback_s is None or now - since < self.failback_s:
                    continue
                return name, f"{name} has delivered again for {self.failback_s:g} s"
            if name == self.on_air:
                return name, self.reason
            return name, ", ".join(self._why(n) for n in lost) or f"{name} delivers"
        gone = ", ".join(self._why(n) for n in inputs)
        return SLATE, f"no input delivers ({gone})"

    def _why(self, name: str) -> str:
        if name in self.impaired:
            return f"{name} {self.impaired[name]}"
        return f"{name} silent for over {self.loss_s * 1000:.0f} ms"

    def _take(self, name: str) -> None:
        self.switches.append((time.time(), self.on_air, name))
        self.on_air, self.since, self.pending = name, time.time(), None
        for datagram in self.gop.get(name, ()):
            self.send(datagram)
