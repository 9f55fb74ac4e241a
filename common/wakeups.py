"""Wake-ups from PostgreSQL (LISTEN/NOTIFY) for the loops that would otherwise read the
database every second at rest: a node's media servers (`worker.servers`) and webhook sender
(`worker.webhooks`), and the reconciler (`common.reconcile.rest`).

Triggers (migration 0012) notify `streamfleet_servers` when a media server's row changes,
`streamfleet_webhooks` when a webhook delivery is written or a paused webhook resumes, and
`streamfleet_farm` when a statement writes what a reconcile round reads. One connection per
process listens; each channel wakes the loop that follows it. A wake-up is a hint, never the
data: the loop reads the database as before, just not every second. PostgreSQL sends a
notification once its transaction commits, to the listeners of that database only.

It listens only once it has heard itself: a notification it sends through the engine's pool,
as any writer would, must come back to it (within `PROBE_S`), and again whenever it has been
quiet for `KEEPALIVE_S`. Behind a pooler in transaction mode, which does not keep a LISTEN,
it never comes, and it does not listen. While it does not listen (connecting, PostgreSQL out
of reach, not heard) `listening` is False and the loops poll every second as they did.
Whenever listening (re)starts, every channel is woken once, for whatever changed meanwhile.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterable

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

SERVERS = "streamfleet_servers"
WEBHOOKS = "streamfleet_webhooks"
FARM = "streamfleet_farm"
KEEPALIVE_S = 30.0  # a quiet connection is checked this often (a dead one is replaced)
PROBE_S = 2.0  # how long its own notification may take to come back
RETRY_S = 5.0  # how soon a lost connection is opened again
NOT_HEARD_RETRY_S = 60.0  # how soon it tries again after not hearing itself
CONNECT_TIMEOUT_S = 5
_PROBE = text("SELECT pg_notify(:channel, '')")


class NotHeard(Exception):
    """A notification sent through the engine's pool did not reach the listening connection."""


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
        self.probe_channel = f"streamfleet_probe_{os.getpid()}_{secrets.token_hex(4)}"
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
        if self._thread.is_alive():  # never started: nothing to wait for
            self._thread.join(5)
        self._waker.close()
        self._woken.close()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
        params = {"connect_timeout": CONNECT_TIMEOUT_S, **cparams}
        connection = psycopg.Connection.connect(*cargs, **params, autocommit=True)
        for name in [*self.channels, self.probe_channel]:
            connection.execute(f'LISTEN "{name}"')  # our own names, quoted all the same
        return connection

    def _run(self) -> None:
        while not self._stop.is_set():
            retry_s = self.retry_s
            try:
                with self._connect() as connection:
                    self._listen(connection)
            except NotHeard:
                log.warning(
                    "PostgreSQL's notifications do not reach this process (a pooler in "
                    "transaction mode?): reading every second instead; trying again in %.0f s",
                    NOT_HEARD_RETRY_S,
                )
                retry_s = NOT_HEARD_RETRY_S
            except (psycopg.Error, OSError, SQLAlchemyError) as error:
                log.warning("not woken by PostgreSQL (reading every second meanwhile): %s", error)
            finally:
                if self.listening:
                    self.listening = False
                    self._wake_all()  # back to polling at once
            if select.select([self._woken], [], [], retry_s)[0]:
                return

    def _listen(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        if not self._heard(connection):
            return  # stopping
        self.listening = True
        self._wake_all()  # whatever changed before we listened
        woken = self._woken.fileno()
        while True:
            ready = select.select([connection.fileno(), woken], [], [], KEEPALIVE_S)[0]
            if woken in ready:
                return
            if not ready:  # quiet for a while: is the whole way still open?
                if not self._heard(connection):
                    return
            elif not self._dispatch(connection):  # something else came (the connection closing)
                connection.execute("SELECT 1")  # raises if it is gone

    def _heard(self, connection: psycopg.Connection[tuple[object, ...]]) -> bool:
        """Send a notification to its own channel through the engine's pool and wait for it
        (raises NotHeard if it does not come within PROBE_S). False: stopping."""
        with self.engine.connect() as sender:
            sender.execute(_PROBE, {"channel": self.probe_channel})
            sender.commit()
        deadline = time.monotonic() + PROBE_S
        woken = self._woken.fileno()
        while (left_s := deadline - time.monotonic()) > 0:
            ready = select.select([connection.fileno(), woken], [], [], left_s)[0]
            if woken in ready:
                return False
            if ready:
                received = self._dispatch(connection)
                if self.probe_channel in received:
                    return True
                if not received:  # not a notification: the connection closing?
                    connection.execute("SELECT 1")  # raises if it is gone
        raise NotHeard

    def _dispatch(self, connection: psycopg.Connection[tuple[object, ...]]) -> set[str]:
        """Wake the channels notified; the names that came."""
        received = {n.channel for n in connection.notifies(timeout=0)}
        for name in received:
            if name in self.channels:
                self.channels[name].wake()
        return received

    def _wake_all(self) -> None:
        for channel in self.channels.values():
            channel.wake()
