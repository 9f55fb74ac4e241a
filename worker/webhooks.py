"""Every worker sends the farm's due webhook deliveries (`common.webhooks.delivery`).

A thread claims due deliveries (SKIP LOCKED: workers share the work, never send one twice at
once), as many as it has senders free, and sends them on those threads, each with a short
timeout: an endpoint that hangs holds one of them, never the worker's control of its FFmpeg,
and never an API request. Nothing waits in a queue while its claim runs out.

It looks again a second later while deliveries are being sent or claimed; otherwise it sleeps
until the next one is due (a retry, a claim that ran out), woken at once by a new delivery or
a resumed webhook (`common.wakeups`), and looks at least every `idle_s` all the same. While
nothing wakes it (not listening) it looks every second.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from common.db import Database
from common.wakeups import Channel
from common.webhooks import delivery

log = logging.getLogger(__name__)


class Look(NamedTuple):
    claimed: int  # deliveries claimed (and being sent)
    sleep_s: float  # before looking again, unless woken


class WebhookSender:
    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool,
        every_s: float = 1.0,
        idle_s: float = 30.0,
        senders: int = 4,
        wakeups: Channel | None = None,
    ) -> None:
        self.db = db
        self.allow_private = allow_private  # STREAMFLEET_OUTBOUND_PRIVATE
        self.every_s = every_s
        self.idle_s = idle_s
        self.wakeups = wakeups or Channel()
        self.senders = senders
        self._busy = 0  # deliveries being sent now
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(senders, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wakeups.wake()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def send_due(self) -> Look:
        """Claim what is due, as much as there are senders free, and send it."""
        with self._lock:
            free = self.senders - self._busy
        if free <= 0:
            return Look(0, self.every_s)
        with self.db.reading() as session:  # most times nothing is due: one statement
            due_in_s = delivery.due_in_s(session)
        if due_in_s is None or due_in_s > 0:
            quiet_s = self.idle_s if self.wakeups.listening else self.every_s
            return Look(0, quiet_s if due_in_s is None else min(due_in_s, quiet_s))
        with self.db.transaction() as session:
            claimed = delivery.claim(session, free)
        with self._lock:
            self._busy += len(claimed)
        for one in claimed:
            self._pool.submit(self._send, one)
        return Look(len(claimed), self.every_s)

    def _send(self, claimed: delivery.Claimed) -> None:
        try:
            answer = delivery.send(claimed, allow_private=self.allow_private)
            with self.db.transaction() as session:
                delivery.record(session, claimed.id, answer)
        except SQLAlchemyError:  # due again once its claim runs out
            log.warning("could not record webhook delivery %d", claimed.id, exc_info=True)
        finally:
            with self._lock:
                self._busy -= 1

    def _run(self) -> None:
        while not self._stop.is_set():
            sleep_s = self.every_s
            try:
                sleep_s = self.send_due().sleep_s
            except SQLAlchemyError as error:
                log.warning("webhook deliveries not read: %s", error)
            self.wakeups.wait(sleep_s)
