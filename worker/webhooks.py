"""Every worker sends the farm's due webhook deliveries (`common.webhooks.delivery`).

A thread claims due deliveries once a second (SKIP LOCKED: workers share the work, never send
one twice at once), as many as it has senders free, and sends them on those threads, each with
a short timeout: an endpoint that hangs holds one of them, never the worker's control of its
FFmpeg, and never an API request. Nothing waits in a queue while its claim runs out.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from common.db import Database
from common.webhooks import delivery

log = logging.getLogger(__name__)


class WebhookSender:
    def __init__(
        self, db: Database, *, allow_private: bool, every_s: float = 1.0, senders: int = 4
    ) -> None:
        self.db = db
        self.allow_private = allow_private  # STREAMFLEET_OUTBOUND_PRIVATE
        self.every_s = every_s
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
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def send_due(self) -> int:
        """Claim what is due, as much as there are senders free, and send it; how many."""
        with self._lock:
            free = self.senders - self._busy
        if free <= 0:
            return 0
        with self.db.reading() as session:  # most seconds nothing is due: one statement
            if not delivery.any_due(session):
                return 0
        with self.db.transaction() as session:
            claimed = delivery.claim(session, free)
        with self._lock:
            self._busy += len(claimed)
        for one in claimed:
            self._pool.submit(self._send, one)
        return len(claimed)

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
            try:
                self.send_due()
            except SQLAlchemyError as error:
                log.warning("webhook deliveries not read: %s", error)
            self._stop.wait(self.every_s)
