"""Writes what the supervisor observes to PostgreSQL, in order, off the supervisor's loop."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace

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

    def report(self, job: Job, report: reports.Report) -> None:
        attempt = self._attempt(job)
        match report:
            case reports.Waiting():
                log.info("waiting: %s", report.reason, extra=self._about(job))
            case reports.Retrying():
                log.warning("FFmpeg failed: %s", report.error, extra=self._about(job))
            case reports.Failed():
                log.error("gave up: %s (%s)", report.error, report.reason, extra=self._about(job))
            case reports.Ended():
                # Fenced: the lease could not be renewed for this long.
                fence_s = self.farm.settings.fence_after_s
                why = f"its lease could not be renewed for {fence_s:g} s"
                report = replace(report, fence_reason=why)
        # Gone for good: its statistics go too (unless fenced: Redis is likely out of
        # reach, and they expire on their own).
        gone = isinstance(report, reports.Failed) or (
            isinstance(report, reports.Ended) and report.outcome is not Outcome.FENCED
        )
        final = report

        def write(session: Session) -> None:
            # One still wanted once gone from here (a move off a draining node, a definition
            # change) is PENDING, placed by the reconciler's next round: the worker never places.
            reports.apply(session, attempt, final)

        self._queue.put(write)
        if gone:  # once the report is written (no read shows the statistics of one not placed)
            self._queue.put(lambda _session: self._forget_stats(job))


class RelayCleanup:
    """An `Observer` in front of another: a job that ends leaves the node's relay."""

    def __init__(self, inner: Reporter, relay: RelayHub) -> None:
        self.inner = inner
        self.relay = relay

    def report(self, job: Job, report: reports.Report) -> None:
        if isinstance(report, reports.Failed | reports.Ended):
            self.relay.forget(job.restream_id, job.generation)
        self.inner.report(job, report)
