"""The node's relay: one restream's output fanned out to the restreams it feeds, and counted.

A source (a live video's ingest) writes MPEG-TS over UDP to a loopback port the hub owns;
each restream it feeds (a destination) reads its own loopback port, to which the hub copies
every datagram. A destination starts, stops or crashes alone: the source and the other
destinations never notice. A slow destination loses datagrams in its own socket buffer
instead of holding the others back.

Every relay counts what it receives: that is the output bitrate of its source, which FFmpeg
itself does not report for outputs through the tee muxer or for HLS and DASH. Such restreams
send a copy to a relay of their own that feeds nobody: a meter.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
DATAGRAM_MAX = 65536
POLL_S = 0.5
RATE_WINDOW_S = 3.0  # the byte rate is measured over this much of the recent past
SAMPLE_EVERY_S = 0.5


Subscribers = dict[tuple[str, int], int]  # (restream id, generation) -> its loopback port


@dataclass
class _Source:
    sock: socket.socket
    generation: int
    subscribers: Subscribers  # shared with the hub: they outlive one socket of the source
    stop: threading.Event = field(default_factory=threading.Event)
    received: int = 0  # bytes, since the socket opened
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=16))

    def count(self, size: int) -> None:
        self.received += size
        now = time.monotonic()
        if not self.samples or now - self.samples[-1][0] >= SAMPLE_EVERY_S:
            self.samples.append((now, self.received))

    def kbps(self) -> float | None:
        """What the source sent per second lately, in kbit/s: 0 once it fell silent, None
        before there is enough to tell."""
        now = time.monotonic()
        recent = [sample for sample in list(self.samples) if now - sample[0] <= RATE_WINDOW_S]
        if not recent:
            return 0.0 if self.samples else None
        since, total = recent[0]
        span = now - since
        return (self.received - total) * 8 / 1000 / span if span >= SAMPLE_EVERY_S else None

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port


class RelayHub:
    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}
        self._subscribers: dict[str, Subscribers] = {}
        self._lock = threading.Lock()

    def source_port(self, source_id: str, generation: int) -> int:
        """The loopback port a source's relay output writes to (opened on first use)."""
        with self._lock:
            source = self._source(source_id)
            source.generation = max(source.generation, generation)
            return source.port

    def subscribe(self, source_id: str, subscriber_id: str, generation: int) -> int:
        """A loopback port that will receive a copy of everything `source_id` sends."""
        with self._lock:
            self._source(source_id)
            port = _free_udp_port()
            self._subscribers[source_id][(subscriber_id, generation)] = port
            return port

    def forget(self, restream_id: str, generation: int) -> None:
        """That generation of `restream_id` ended: stop feeding it, or close its relay."""
        with self._lock:
            for source_id, subscribers in list(self._subscribers.items()):
                subscribers.pop((restream_id, generation), None)
                if not subscribers and source_id not in self._sources:
                    del self._subscribers[source_id]
            own = self._sources.get(restream_id)
            if own is not None and own.generation == generation:
                self._close(restream_id)

    def kbps(self, source_id: str) -> float | None:
        """The recent byte rate of what `source_id` sends to its relay (or meter)."""
        with self._lock:
            source = self._sources.get(source_id)
            return source.kbps() if source is not None else None

    def close(self) -> None:
        with self._lock:
            for source_id in list(self._sources):
                self._close(source_id)

    def _source(self, source_id: str) -> _Source:
        source = self._sources.get(source_id)
        if source is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(POLL_S)
            subscribers = self._subscribers.setdefault(source_id, {})
            source = _Source(sock=sock, generation=-1, subscribers=subscribers)
            self._sources[source_id] = source
            thread = threading.Thread(
                target=self._pump, args=(source,), name=f"relay-{source_id}", daemon=True
            )
            thread.start()
        return source

    def _close(self, source_id: str) -> None:
        """Close a source's socket. Those it feeds stay subscribed: when the source runs again
        (a new generation on this node), they receive from its new socket."""
        source = self._sources.pop(source_id)
        source.stop.set()
        if not self._subscribers.get(source_id):
            self._subscribers.pop(source_id, None)

    @staticmethod
    def _pump(source: _Source) -> None:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while not source.stop.is_set():
                try:
                    data = source.sock.recv(DATAGRAM_MAX)
                except TimeoutError:
                    continue
                except OSError:
                    return
                source.count(len(data))
                for port in list(source.subscribers.values()):
                    with contextlib.suppress(OSError):  # a destination not (yet) listening
                        out.sendto(data, ("127.0.0.1", port))
        finally:
            out.close()
            source.sock.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
