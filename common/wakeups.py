"""Wake-ups from PostgreSQL (LISTEN/NOTIFY) for the loops that would otherwise read the
database every second at rest: a node's media servers (`worker.servers`) and webhook sender
(`worker.webhooks`), and the reconciler (`common.reconcile.rest`).

Triggers (migration 0012) notify `streamfleet_servers` when a media server's row changes,
`streamfleet_webhooks` when a webhook delivery is written or a paused webhook resumes, and
`streamfleet_farm` when a statement writes what a reconcile round reads. One connection per
process listens; each channel wakes the loop that follows it. A wake-up is a hint, never the
data: the loop reads the database as before, just not every second. PostgreSQL sends a
notification once its transaction commits, to the listeners of that database only.

While nothing listens (connecting, PostgreSQL out of reach, or a pooler in transaction mode
that does not keep LISTEN) `listening` is False and the loops poll every second as they did.
Whenever listening (re)starts, every channel is woken once, for whatever changed meanwhile.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Iterable

import psycopg
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

SERVERS = "streamfleet_servers"
WEBHOOKS = "streamfleet_webhooks"
FARM = "streamfleet_farm"
KEEPALIVE_S = 30.0  # a quiet connection is checked this often (a dead one is replaced)
RETRY_S = 5.0  # how soon a lost connection is opened again
CONNECT_TIMEOUT_S = 5


class Channel:
    """One channel's wake-ups, for the loop that follows it. Without a listener (`Channel()`)
    it never listens: its loop polls."""

    def __init__(self, listener: Wakeups | None = None) -> None:
        self._listener = listener
        self._event = threading.Event()

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.listening

    def wake(self) -> None:
        self._event.set()

    def woken(self) -> bool:
        """Woken since the last `wait` or `clear` (for a loop that only looks)."""
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout_s: float) -> bool:
        """Until woken (True) or `timeout_s` passed."""
        woken = self._event.wait(timeout_s)
        self._event.clear()
        return woken


class Wakeups:
    def __init__(
        self,
        engine: Engine,
        channels: Iterable[str] = (SERVERS, WEBHOOKS),
        *,
        retry_s: float = RETRY_S,
    ) -> None:
        self.engine = engine
        self.retry_s = retry_s
        self.channels = {name: Channel(self) for name in channels}
        self.listening = False
        self._stop = threading.Event()
        self._waker, self._woken = socket.socketpair()  # stop() wakes the listening thread
        self._thread = threading.Thread(target=self._run, name="wakeups", daemon=True)

    def channel(self, name: str) -> Channel:
        return self.channels[name]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._waker.send(b"x")
        self._thread.join(5)
        self._waker.close()
        self._woken.close()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        params = {"connect_timeout": CONNECT_TIMEOUT_S, **cparams}
        connection = psycopg.Connection.connect(*cargs, **params, autocommit=True)
        for name in self.channels:
            connection.execute(f'LISTEN "{name}"')  # our own constants, quoted all the same
        return connection

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    self._listen(connection)
            except (psycopg.Error, OSError) as error:
                log.warning("not woken by PostgreSQL (polling meanwhile): %s", error)
            finally:
                if self.listening:
                    self.listening = False
                    self._wake_all()  # back to polling at once
            if select.select([self._woken], [], [], self.retry_s)[0]:
                return

    def _listen(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        self.listening = True
        self._wake_all()  # whatever changed before we listened
        woken = self._woken.fileno()
        while True:
            ready = select.select([connection.fileno(), woken], [], [], KEEPALIVE_S)[0]
            if woken in ready:
                return
            received = {n.channel for n in connection.notifies(timeout=0)} if ready else set()
            if not received:  # quiet, or something else came (the connection closing)
                connection.execute("SELECT 1")  # raises if it is gone
            for name in received:
                if name in self.channels:
                    self.channels[name].wake()

    def _wake_all(self) -> None:
        for channel in self.channels.values():
            channel.wake()
