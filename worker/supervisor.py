"""The supervisor: owns this node's FFmpeg processes (DESIGN §4, §6).

One asyncio loop in one long-lived thread spawns every FFmpeg, so that `PR_SET_PDEATHSIG`
(which follows the *thread* that forked) ties each FFmpeg to the worker's life. This is its
thread-safe front: Celery task threads, the lease and the HTTP endpoint call in here; each
restream's generation is a `worker.job.JobRun` on the loop, and one restream has one at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from common.lifecycle.reports import Failed
from common.live import RestreamStats
from common.logs import about
from worker.job import Job, Limits, Observer
from worker.jobrun import JobRun
from worker.spawn import Spawner, kill_group, remove_workdirs

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a restream sent lately, in kbit/s, when FFmpeg does not say (tee, HLS, DASH outputs).
Meter = Callable[[str], float | None]


class Supervisor:
    """Thread-safe front of the supervisor loop. Celery task threads call in here."""

    def __init__(
        self,
        node: str,
        limits: Limits,
        observer: Observer,
        *,
        spawner: Spawner | None = None,
        meter: Meter | None = None,
        may_run: Callable[[], bool] = lambda: True,
    ) -> None:
        """`may_run` says whether FFmpeg may be spawned now (the node's lease is valid): it is
        asked before every spawn, so that nothing starts on a node that has fenced itself."""
        self.node = node
        self.may_run = may_run
        self.spawner = spawner or Spawner.detect()
        self.limits = limits
        self.observer = observer
        self.meter = meter
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="supervisor", daemon=True)
        self._jobs: dict[str, JobRun] = {}

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    # -- thread-safe API ----------------------------------------------------------------

    def run(self, job: Job) -> bool:
        """Make `job` the running generation of its restream. False if a newer one runs."""
        return self._call(self._run(job))

    def stop(self, restream_id: str, generation: int) -> bool:
        """Stop the restream if it runs `generation` or older; False if nothing to stop."""
        return self._call(self._stop(restream_id, generation))

    def fence(self) -> int:
        """Kill every FFmpeg now (the lease is about to expire). Returns how many."""
        return self._call(self._fence())

    def alive(self) -> bool:
        """Its event loop runs and answers within a second."""
        if not self._thread.is_alive():
            return False
        try:
            self._call(asyncio.sleep(0), timeout_s=1.0)
        except TimeoutError:
            return False
        return True

    def shutdown(self, timeout_s: float) -> None:
        """Stop every FFmpeg gracefully, wait up to `timeout_s`, then end the loop."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(TimeoutError):
            self._call(self._stop_all(), timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def generations(self) -> dict[str, int]:
        """Restream id -> generation of each job alive here (running or backing off)."""
        return self._call(self._generations(), 5)

    def stats(self) -> list[RestreamStats]:
        return self._call(self._stats(), 5)

    def jobs(self) -> list[Job]:
        """The jobs alive here (running or backing off)."""
        return self._call(self._jobs_now(), 5)

    # -- on the loop --------------------------------------------------------------------

    async def _run(self, job: Job) -> bool:
        # Loop: while we wait for an older generation to end, another call may have put a
        # newer one (or this one) in its place. Only one process per restream, ever.
        while (current := self._jobs.get(job.restream_id)) is not None:
            if current.job.generation >= job.generation:
                return current.job.generation == job.generation
            await self._end(current)
        if not self.may_run():
            log.warning(
                "not starting: the node's lease is not valid",
                extra=about(job.restream_id, generation=job.generation, node=self.node),
            )
            return False
        process = JobRun(
            job,
            self.limits,
            self.observer,
            node=self.node,
            spawner=self.spawner,
            may_run=self.may_run,
        )
        self._jobs[job.restream_id] = process
        process.task = asyncio.create_task(self._guard(process))
        return True

    async def _guard(self, process: JobRun) -> None:
        try:
            await process.main()
        except Exception:
            log.exception("supervision crashed", extra=process.context)
            if process.process is not None:
                kill_group(process.process)
            self.observer.report(
                process.job,
                Failed(
                    error="internal supervisor error",
                    stderr_tail=list(process.stderr_tail),
                    exit_code=None,
                    reason="supervisor error",
                ),
            )
        finally:
            remove_workdirs(process.job.workdirs)  # before a newer generation prepares them again
            if self._jobs.get(process.job.restream_id) is process:
                del self._jobs[process.job.restream_id]

    async def _end(self, process: JobRun, *, fenced: bool = False) -> None:
        process.request_stop(fenced=fenced)
        if process.task is not None:
            await asyncio.shield(process.task)

    async def _stop(self, restream_id: str, generation: int) -> bool:
        current = self._jobs.get(restream_id)
        if current is None or current.job.generation > generation:
            return False
        await self._end(current)
        return True

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._end(p) for p in list(self._jobs.values())))

    async def _fence(self) -> int:
        jobs = list(self._jobs.values())
        await asyncio.gather(*(self._end(p, fenced=True) for p in jobs))
        return len(jobs)

    async def _generations(self) -> dict[str, int]:
        return {rid: p.job.generation for rid, p in self._jobs.items()}

    async def _jobs_now(self) -> list[Job]:
        return [p.job for p in self._jobs.values()]

    async def _stats(self) -> list[RestreamStats]:
        found = [p.stats() for p in self._jobs.values()]
        if self.meter is not None:
            for stats in found:
                if stats.bitrate_kbps is None and stats.state == "running":
                    kbps = self.meter(stats.restream_id)
                    stats.bitrate_kbps = None if kbps is None else round(kbps, 1)
        return found
