"""Writes what the supervisor observes to PostgreSQL, in order, off the supervisor's loop."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

import redis
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from common import live
from common.db import Database
from common.ffmpeg.outcome import Outcome
from common.lifecycle import reports
from common.lifecycle.reports import Attempt
from common.lifecycle.service import Farm
from common.logs import about
from worker.job import Job
from worker.relay import RelayHub

log = logging.getLogger(__name__)
Write = Callable[[Session], None]
ATTEMPTS = 3


class Reporter:
    """An `Observer` that queues each report and applies it in its own transaction.

    One thread, one queue: the reports of a job reach the database in the order they
    happened (starting, running, retrying, ...). A report that cannot be written after a
    few attempts is dropped; the reconciler's next round brings state back in line.
    """

    def __init__(self, db: Database, farm: Farm, node: str) -> None:
        self.db = db
        self.farm = farm
        self.redis = farm.redis
        self.node = node
        self._queue: queue.Queue[Write | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="reporter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every report queued so far is written."""
        done = threading.Event()
        self._queue.put(lambda _session: done.set())
        done.wait(timeout_s)

    def _serve(self) -> None:
        while (write := self._queue.get()) is not None:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    with self.db.transaction() as session:
                        write(session)
                    break
                except OperationalError:
                    log.warning("report not written (attempt %d of %d)", attempt, ATTEMPTS)
                    time.sleep(0.5 * attempt)
                except Exception:
                    log.exception("report failed")
                    break

    def _about(self, job: Job) -> dict[str, object]:
        return about(job.restream_id, generation=job.generation, node=self.node)

    def _attempt(self, job: Job) -> Attempt:
        return Attempt(job.restream_id, job.generation, self.node)

    def _forget_stats(self, job: Job) -> None:
        with contextlib.suppress(redis.RedisError):  # they expire on their own anyway
            live.delete_stats(self.redis, job.restream_id)

    # -- Observer ----------------------------------------------------------------------

    def starting(self, job: Job, *, pid: int, restarts: int) -> None:
        attempt = self._attempt(job)
        self._queue.put(lambda s: reports.starting(s, attempt, pid=pid, restarts=restarts))

    def running(self, job: Job) -> None:
        attempt = self._attempt(job)
        self._queue.put(lambda s: reports.running(s, attempt))

    def waiting(self, job: Job, *, reason: str, error: str | None) -> None:
        attempt = self._attempt(job)
        log.info("waiting: %s", reason, extra=self._about(job))
        self._queue.put(lambda s: reports.waiting(s, attempt, reason=reason, error=error))

    def retrying(
        self,
        job: Job,
        *,
        error: str,
        stderr_tail: list[str],
        restarts: int,
        backoff_s: float,
        exit_code: int | None,
    ) -> None:
        attempt = self._attempt(job)
        log.warning("FFmpeg failed: %s", error, extra=self._about(job))
        self._queue.put(
            lambda s: reports.retrying(
                s,
                attempt,
                error=error,
                stderr_tail=stderr_tail,
                restarts=restarts,
                backoff_s=backoff_s,
                exit_code=exit_code,
            )
        )

    def failed(
        self, job: Job, *, error: str, stderr_tail: list[str], exit_code: int | None, reason: str
    ) -> None:
        attempt = self._attempt(job)
        log.error("gave up: %s (%s)", error, reason, extra=self._about(job))

        def write(session: Session) -> None:
            self._forget_stats(job)
            reports.failed(
                session,
                attempt,
                error=error,
                stderr_tail=stderr_tail,
                exit_code=exit_code,
                reason=reason,
            )

        self._queue.put(write)

    def ended(self, job: Job, *, outcome: Outcome, exit_code: int | None) -> None:
        attempt = self._attempt(job)
        fence_after_s = self.farm.settings.fence_after_s

        def write(session: Session) -> None:
            if outcome is not Outcome.FENCED:  # fenced: Redis is likely out of reach; they expire
                self._forget_stats(job)
            # Still wanted once gone from here (a move off a draining node, a definition
            # change): PENDING, placed by the reconciler's next round. The worker never places.
            reports.ended(
                session,
                attempt,
                outcome=outcome.value,
                exit_code=exit_code,
                fence_reason=f"its lease could not be renewed for {fence_after_s:g} s",
            )

        self._queue.put(write)


class RelayCleanup:
    """An `Observer` in front of another: a job that ends leaves the node's relay."""

    def __init__(self, inner: Reporter, relay: RelayHub) -> None:
        self.inner = inner
        self.relay = relay

    def starting(self, job: Job, *, pid: int, restarts: int) -> None:
        self.inner.starting(job, pid=pid, restarts=restarts)

    def running(self, job: Job) -> None:
        self.inner.running(job)

    def waiting(self, job: Job, *, reason: str, error: str | None) -> None:
        self.inner.waiting(job, reason=reason, error=error)

    def retrying(
        self,
        job: Job,
        *,
        error: str,
        stderr_tail: list[str],
        restarts: int,
        backoff_s: float,
        exit_code: int | None,
    ) -> None:
        self.inner.retrying(
            job,
            error=error,
            stderr_tail=stderr_tail,
            restarts=restarts,
            backoff_s=backoff_s,
            exit_code=exit_code,
        )

    def failed(
        self, job: Job, *, error: str, stderr_tail: list[str], exit_code: int | None, reason: str
    ) -> None:
        self.relay.forget(job.restream_id, job.generation)
        self.inner.failed(
            job, error=error, stderr_tail=stderr_tail, exit_code=exit_code, reason=reason
        )

    def ended(self, job: Job, *, outcome: Outcome, exit_code: int | None) -> None:
        self.relay.forget(job.restream_id, job.generation)
        self.inner.ended(job, outcome=outcome, exit_code=exit_code)
