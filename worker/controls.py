"""What a node does with its control messages: start, stop, sync, and resuming after a fence.

Control messages are hints; the database is the truth. Before starting a generation the node
checks that the restream is still active and placed here with that generation; before
stopping something a sync did not list, it checks that it really should not run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from common.db import Database
from common.ffmpeg.outcome import Outcome
from common.lifecycle import reports
from common.lifecycle.reports import Attempt
from common.logs import about
from worker.job import Job
from worker.launch import Launcher
from worker.lease import Heartbeat
from worker.relay import RelayHub
from worker.reporter import Reporter
from worker.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass
class Controls:
    """The node's answers to `restream.start`, `restream.stop` and `node.sync`, called from
    Celery's task threads (and `resume` from the lease's, when it is back)."""

    node: str
    db: Database
    heartbeat: Heartbeat
    supervisor: Supervisor
    launcher: Launcher
    reporter: Reporter
    relay: RelayHub
    # Starts on their way to the supervisor (checked, being prepared), each with its own
    # cancel flag: a stop that arrives meanwhile cancels them all, so nothing it confirmed
    # as stopped starts afterwards. Restream id -> [(generation, cancelled)].
    _starting: dict[str, list[tuple[int, threading.Event]]] = field(
        default_factory=dict, init=False
    )
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False)
    _locks_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def resume(self) -> None:
        """Start again what this node fenced and still owns (its lease is back): every
        restream the database still places here, each checked as any start is. Without
        waiting for the reconciler: a Redis outage costs no more than its own length plus one
        lease renewal."""
        try:
            with self.db.transaction() as session:
                owned = reports.owned_by(session, self.node)
        except OperationalError:
            log.warning("database unreachable: the reconciler will restart what was fenced")
            return
        running = self.supervisor.generations()
        for restream_id, generation in owned.items():
            if running.get(restream_id, -1) < generation:
                self.start(restream_id, generation)
        if owned:
            log.info("lease back: started again %d restream(s)", len(owned))

    def _about(self, restream_id: str, generation: int) -> dict[str, object]:
        return about(restream_id, generation=generation, node=self.node)

    def _lock(self, restream_id: str) -> threading.Lock:
        """Orders the start and the stop of one restream on this node."""
        with self._locks_lock:
            return self._locks.setdefault(restream_id, threading.Lock())

    def start(self, restream_id: str, generation: int) -> bool:
        """Run this generation if the database agrees it belongs here. Idempotent."""
        entry = (generation, threading.Event())
        with self._lock(restream_id):
            self._starting.setdefault(restream_id, []).append(entry)
        try:
            return self._start(restream_id, generation, cancelled=entry[1])
        finally:
            with self._lock(restream_id):
                pending = self._starting[restream_id]
                pending.remove(entry)
                if not pending:
                    del self._starting[restream_id]

    def _start(self, restream_id: str, generation: int, *, cancelled: threading.Event) -> bool:
        if not self.heartbeat.valid():
            log.warning(
                "ignoring a start: lease not valid", extra=self._about(restream_id, generation)
            )
            return False
        if self.supervisor.generations().get(restream_id, -1) >= generation:
            return False
        attempt = Attempt(restream_id, generation, self.node)
        with self.db.reading() as session:  # one statement: no transaction around it
            restream = reports.should_run(session, attempt)
            if restream is None:
                log.info(
                    "ignoring a start: not placed here", extra=self._about(restream_id, generation)
                )
                return False
            launch = self.launcher.prepare(restream)
        try:
            job = self.launcher.job(launch)
        except (ValueError, OSError) as error:
            self._abandon(restream_id, generation)
            self.reporter.report(
                Job(restream_id, generation, []),
                reports.Failed(
                    error=str(error),
                    stderr_tail=[],
                    exit_code=None,
                    reason="cannot build the FFmpeg command",
                ),
            )
            return False
        with self._lock(restream_id):
            if cancelled.is_set():
                log.info("start cancelled by a stop", extra=self._about(restream_id, generation))
                started = False
            else:
                started = self.supervisor.run(job)
        if not started:
            self._abandon(restream_id, generation)
        return started

    def _abandon(self, restream_id: str, generation: int) -> None:
        """A start that will not run: give back the relay ports it opened, unless that
        generation runs here after all (a duplicate start)."""
        if self.supervisor.generations().get(restream_id) != generation:
            self.relay.forget(restream_id, generation)

    def stop(self, restream_id: str, generation: int) -> None:
        with self._lock(restream_id):
            for started, cancelled in self._starting.get(restream_id, []):
                if started <= generation:
                    cancelled.set()  # it will not spawn
            stopped = self.supervisor.stop(restream_id, generation)
        if not stopped and self.heartbeat.valid():
            # Nothing ran here (never started, or already gone): confirm the stop anyway.
            # Not without a valid lease: this may not be the worker running it (a twin of
            # the same name holds the lease); a lost node's stops are the reconciler's.
            self.reporter.report(
                Job(restream_id, generation, []), reports.Ended(Outcome.STOPPED, exit_code=None)
            )

    def sync(self, desired: dict[str, int]) -> None:
        """Converge on `desired` (restream id -> generation), checking the database first."""
        running = self.supervisor.generations()
        for restream_id, generation in desired.items():
            if running.get(restream_id, -1) < generation:
                self.start(restream_id, generation)
        for restream_id, generation in running.items():
            if desired.get(restream_id) == generation:
                continue
            with self.db.transaction() as session:
                keep = reports.should_run(session, Attempt(restream_id, generation, self.node))
            if keep is None:
                log.info(
                    "sync: stopping what is not ours", extra=self._about(restream_id, generation)
                )
                self.supervisor.stop(restream_id, generation)
