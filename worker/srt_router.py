"""An SRT server: one UDP port, many streams, routed by each caller's `streamid`
(`common.definitions.server.route`), on the reference libsrt. Run by the worker as a process
of its own (`worker.srt_server`):

    python -m worker.srt_router --port 9000 --name studio [--latency-ms 200] [--maxbw -1]
        [--timeout-s 10] [--rcvbuf BYTES] --stats stats.json      (passphrase: SRT_PASSPHRASE)

A publisher's packets go, as they come, to each player of its stream without waiting: a player
whose send buffer is full misses that packet (libsrt drops what is too late anyway) and slows
no one else. The listener's options (latency, passphrase, bandwidth, buffer, peer-idle
timeout) are inherited by every connection it accepts. Every second the server writes its
streams (publisher, players, bitrate, losses) to the stats file, atomically.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.definitions.server import route
from worker import libsrt
from worker.libsrt import Socket, SrtError

PACKET = 1500  # above SRT's live payload (1316)


@dataclass
class Peer:
    socket: Socket
    bytes: int = 0
    counted: int = 0  # bytes at the last report
    kbps: float = 0.0

    def report(self, seconds: float, lost: int) -> dict[str, object]:
        self.kbps = (self.bytes - self.counted) * 8 / 1000 / max(seconds, 1e-3)
        self.counted = self.bytes
        return {"address": self.socket.peer, "kbps": round(self.kbps, 1), "bytes": self.bytes,
                "lost": lost}  # fmt: skip


@dataclass
class Stream:
    name: str
    publisher: Peer | None = None
    players: list[Peer] = field(default_factory=list)


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.streams: dict[str, Stream] = {}
        self.waiting: list[Peer] = []  # players of "the only stream", before there is one
        self.lock = threading.Lock()

    def take(self, caller: Socket) -> None:
        """A caller the listener accepted: a publisher, a player, or hung up on."""
        found = route(caller.get_text(libsrt.SRTO_STREAMID))
        if found is None or found.server != self.name:
            caller.close()
            return
        peer = Peer(caller)
        with self.lock:
            if found.role == "publisher":
                stream = self.streams.setdefault(found.stream, Stream(found.stream))
                if stream.publisher is not None:  # one publisher per stream
                    caller.close()
                    return
                stream.publisher = peer
                if len(self.publishing()) == 1:  # "the only stream" is this one now
                    stream.players += self.waiting
                    self.waiting = []
            else:
                caller.set_int(libsrt.SRTO_SNDSYN, 0)  # never wait for a slow player
                target = found.stream or self._only()
                if target:
                    self.streams.setdefault(target, Stream(target)).players.append(peer)
                else:
                    self.waiting.append(peer)
        if found.role == "publisher":
            threading.Thread(target=self.relay, args=(stream, peer), daemon=True).start()

    def publishing(self) -> list[Stream]:
        return [s for s in self.streams.values() if s.publisher is not None]

    def _only(self) -> str:
        streams = self.publishing()
        return streams[0].name if len(streams) == 1 else ""

    def relay(self, stream: Stream, publisher: Peer) -> None:
        """Everything the publisher sends, to every player of its stream, until it leaves."""
        buffer = ctypes.create_string_buffer(PACKET)
        try:
            while True:
                size = publisher.socket.recv(buffer)
                publisher.bytes += size
                for player in list(stream.players):
                    try:
                        if player.socket.send(buffer, size):
                            player.bytes += size
                    except SrtError:
                        self._drop(stream, player)
        except SrtError:
            pass
        finally:
            publisher.socket.close()
            with self.lock:
                stream.publisher = None

    def _drop(self, stream: Stream, player: Peer) -> None:
        with self.lock:
            if player in stream.players:
                stream.players.remove(player)
        player.socket.close()

    def report(self, seconds: float) -> dict[str, object]:
        """The streams as `common.live.StreamStats`; players gone meanwhile are let go."""
        with self.lock:
            for stream in list(self.streams.values()):
                gone = [p for p in stream.players if not p.socket.connected]
                for player in gone:
                    stream.players.remove(player)
                    player.socket.close()
                if stream.publisher is None and not stream.players:
                    del self.streams[stream.name]
            self.waiting = [p for p in self.waiting if p.socket.connected]
            streams = list(self.streams.values())
        shown = []
        for stream in streams:
            publisher = stream.publisher
            shown.append(
                {
                    "name": stream.name,
                    "publisher": publisher.report(seconds, publisher.socket.lost_packets()[1])
                    if publisher
                    else None,
                    "players": [
                        p.report(seconds, p.socket.lost_packets()[0]) for p in stream.players
                    ],
                }
            )
        return {"streams": shown}


def listener(arguments: argparse.Namespace) -> Socket:
    libsrt.startup()
    server = Socket.create()
    server.set_int(libsrt.SRTO_LATENCY, arguments.latency_ms)
    server.set_int64(libsrt.SRTO_MAXBW, arguments.maxbw)
    server.set_int(libsrt.SRTO_PEERIDLETIMEO, arguments.timeout_s * 1000)
    if arguments.rcvbuf:
        server.set_int(libsrt.SRTO_RCVBUF, arguments.rcvbuf)
    passphrase = os.environ.get("SRT_PASSPHRASE")
    if passphrase:
        server.set_text(libsrt.SRTO_PASSPHRASE, passphrase)
    server.bind(arguments.address, arguments.port)
    server.listen(64)
    return server


def write_stats(path: Path, router: Router, stop: threading.Event) -> None:
    last = time.monotonic()
    while True:
        now = time.monotonic()
        document = router.report(now - last)
        last = now
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(document))
        scratch.replace(path)
        if stop.wait(1.0):
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="0.0.0.0")  # noqa: S104
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--maxbw", type=int, default=-1)
    parser.add_argument("--timeout-s", type=int, default=10)
    parser.add_argument("--rcvbuf", type=int, default=0)
    parser.add_argument("--stats", type=Path, required=True)
    arguments = parser.parse_args(argv)
    try:
        server = listener(arguments)
    except SrtError as error:
        print(f"cannot serve SRT: {error}", file=sys.stderr)
        return 2
    router = Router(arguments.name)
    stop = threading.Event()
    threading.Thread(target=write_stats, args=(arguments.stats, router, stop), daemon=True).start()
    threading.Thread(target=serve, args=(server, router), daemon=True).start()
    # The main thread only waits, so that SIGTERM ends the server at once (a thread blocked
    # in libsrt's accept would hold the handler until the next caller).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.close()
    return 0


def serve(server: Socket, router: Router) -> None:
    while True:
        try:
            caller = server.accept()
        except SrtError as error:
            print(f"accept failed: {error}", file=sys.stderr)
            time.sleep(0.1)
            continue
        try:
            router.take(caller)
        except SrtError as error:  # gone before it was routed
            print(f"a caller from {caller.peer} was dropped: {error}", file=sys.stderr)
            caller.close()


if __name__ == "__main__":
    sys.exit(main())
