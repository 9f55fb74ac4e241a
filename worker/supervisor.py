"""The supervisor: owns this node's FFmpeg processes (DESIGN §4, §6).

One asyncio loop in one long-lived thread spawns every FFmpeg, so that `PR_SET_PDEATHSIG`
(which follows the *thread* that forked) ties each FFmpeg to the worker's life. Per restream
it keeps the *order* (run this generation / stop) apart from the *state* (what the process
does), restarts crashes with exponential backoff and jitter, kills stalls, and gives up after
the retry budget. Everything it observes goes to an `Observer`; it never touches storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from common.ffmpeg.outcome import (
    Outcome,
    classify_exit,
    failed_output,
    logged_error,
    wrong_publisher,
)
from common.ffmpeg.progress import ProgressBlock, ProgressParser, RateWindow, advanced, flowing
from common.live import OutputStatus, RestreamStats
from common.logs import about
from common.processes import pdeathsig_prefix, set_parent_death_signal

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a restream sent lately, in kbit/s, when FFmpeg does not say (tee, HLS, DASH outputs).
Meter = Callable[[str], float | None]
WATCHDOG_TICK_S = 0.25
REFUSED_PAUSE_S = 0.5  # before listening again after hanging up on a wrong stream key


@dataclass(frozen=True)
class Spawner:
    """Starts FFmpeg in its own process group, set to die with this process (see
    `common.processes`): through setpriv when available, else with a preexec_fn."""

    prefix: tuple[str, ...]

    @classmethod
    def detect(cls) -> Spawner:
        return cls(pdeathsig_prefix("KILL"))

    async def spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.prefix,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: we kill the whole group
            preexec_fn=None if self.prefix else set_parent_death_signal,
        )


@dataclass(frozen=True)
class Job:
    """One generation of one restream, ready to run."""

    restream_id: str
    generation: int
    argv: list[str]
    listens: bool = False  # waits for a publisher: no stall timeout before one arrives
    outputs: int = 1
    cpu_millicores: int = 0  # what its placement reserved on this node
    u30_device: int | None = None
    u30_encoder_units: int = 0
    # Directories its FFmpeg writes into (HLS, DASH): emptied before every spawn, so that no
    # segment of an earlier run is served or left behind, and removed when the job ends.
    workdirs: tuple[str, ...] = ()
    # The URL it pulls from, if it pulls one: an exit saying that source is not there is not
    # a failure; the job waits for the source instead (Outcome.SOURCE_LOST).
    source: str | None = None


@dataclass(frozen=True)
class Limits:
    stall_timeout_s: float = 15.0
    stop_grace_s: float = 5.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    retry_budget: int = 5
    retry_window_s: float = 120.0
    stderr_tail_lines: int = 40
    input_loss_s: float = 1.5
    source_retry_max_s: float = 3.0


class Observer(Protocol):
    """Receives what happens to each job. Called on the supervisor's loop: must not block."""

    def starting(self, job: Job, *, pid: int, restarts: int) -> None: ...
    def running(self, job: Job) -> None: ...
    def waiting(self, job: Job, *, reason: str, error: str | None) -> None: ...
    def retrying(
        self,
        job: Job,
        *,
        error: str,
        stderr_tail: list[str],
        restarts: int,
        backoff_s: float,
        exit_code: int | None,
    ) -> None: ...
    def failed(
        self, job: Job, *, error: str, stderr_tail: list[str], exit_code: int | None, reason: str
    ) -> None: ...
    def ended(self, job: Job, *, outcome: Outcome, exit_code: int | None) -> None: ...


class _Process:
    """One restream's FFmpeg across its restarts, for one generation."""

    def __init__(
        self,
        job: Job,
        limits: Limits,
        observer: Observer,
        *,
        node: str,
        spawner: Spawner,
        may_run: Callable[[], bool],
    ) -> None:
        self.job = job
        self.spawner = spawner
        self.may_run = may_run
        self.context = about(job.restream_id, generation=job.generation, node=node)
        self.limits = limits
        self.observer = observer
        self.node = node
        self.stop_requested = asyncio.Event()
        self.fenced = False
        self.state = "starting"
        self.pid: int | None = None
        self.restarts = 0
        self.stalls = 0
        self.failures: deque[float] = deque()
        self.last_error: str | None = None
        self.stderr_tail: deque[str] = deque(maxlen=limits.stderr_tail_lines)
        self.block: ProgressBlock | None = None
        self.rate = RateWindow()
        self.flowed = False  # media went through in this attempt
        self.progressed_at = time.monotonic()  # when its output last advanced (or it spawned)
        self.source_losses = 0  # attempts in a row that found the source not there
        self.refused_publisher: str | None = None  # the wrong stream key this attempt hung up on
        self.failed_outputs: dict[int, str] = {}
        self.spawned_at = time.monotonic()
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    # -- the life of the job -------------------------------------------------------------

    async def main(self) -> None:
        while True:
            exit_code, stalled = await self._run_once()
            report = classify_exit(
                exit_code if exit_code is not None else 1,
                stop_requested=self.stop_requested.is_set(),
                stalled=stalled,
                fenced=self.fenced,
                stderr_tail=list(self.stderr_tail),
                source=self.job.source if exit_code is not None or stalled else None,
            )
            if report.outcome in (Outcome.STOPPED, Outcome.FENCED):
                self.observer.ended(self.job, outcome=report.outcome, exit_code=exit_code)
                return
            if self.refused_publisher is not None:
                self.last_error = (
                    f"refused a publisher with the wrong stream key {self.refused_publisher!r}"
                )
                log.warning(self.last_error, extra=self.context)
                with contextlib.suppress(TimeoutError):  # a publisher retrying in a loop
                    await asyncio.wait_for(self.stop_requested.wait(), REFUSED_PAUSE_S)
                if not self.stop_requested.is_set():
                    continue
                outcome = Outcome.FENCED if self.fenced else Outcome.STOPPED
                self.observer.ended(self.job, outcome=outcome, exit_code=exit_code)
                return
            if self._publisher_left(report.outcome, exit_code):
                log.info("publisher left; listening again", extra=self.context)
                continue
            if report.outcome is Outcome.SOURCE_LOST:
                if await self._wait_for_source(report.reason):
                    continue
                outcome = Outcome.FENCED if self.fenced else Outcome.STOPPED
                self.observer.ended(self.job, outcome=outcome, exit_code=exit_code)
                return
            self.last_error = report.reason
            if not self._within_budget():
                self.observer.failed(
                    self.job,
                    error=report.reason,
                    stderr_tail=list(self.stderr_tail),
                    exit_code=exit_code,
                    reason=f"{len(self.failures)} failures within {self.limits.retry_window_s:g} s",
                )
                return
            backoff_s = self._backoff_s()
            self.restarts += 1
            self.state = "retrying"
            self.observer.retrying(
                self.job,
                error=report.reason,
                stderr_tail=list(self.stderr_tail),
                restarts=self.restarts,
                backoff_s=backoff_s,
                exit_code=exit_code,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), backoff_s)
            if self.stop_requested.is_set():
                outcome = Outcome.FENCED if self.fenced else Outcome.STOPPED
                self.observer.ended(self.job, outcome=outcome, exit_code=exit_code)
                return

    async def _wait_for_source(self, reason: str) -> bool:
        """Its source is not there: wait (longer each time, up to `source_retry_max_s`), then
        try again, for as long as the job is wanted. Not a failure: it counts against no
        retry budget. False if a stop came meanwhile."""
        self.source_losses += 1
        exponent = self.source_losses - 1
        backoff_s = min(
            self.limits.source_retry_max_s, self.limits.backoff_initial_s * 2.0**exponent
        ) * random.uniform(0.8, 1.2)  # noqa: S311  (jitter, not a secret)
        if self.state != "waiting" or reason != self.last_error:  # news, not every attempt
            log.info("source lost: %s", reason, extra=self.context)
            self.observer.waiting(
                self.job,
                reason=f"waiting for its source ({reason}); trying again every few seconds",
                error=reason,
            )
        self.state, self.last_error = "waiting", reason
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), backoff_s)
        return not self.stop_requested.is_set()

    def _publisher_left(self, outcome: Outcome, exit_code: int | None) -> bool:
        """A listen input whose publisher went away (its stream ended, or went silent) after
        sending media: not a failure, just listen again."""
        ended = outcome is Outcome.FAILED and exit_code == 0
        return self.job.listens and self.flowed and (ended or outcome is Outcome.STALLED)

    def _within_budget(self) -> bool:
        now = time.monotonic()
        self.failures.append(now)
        while self.failures and now - self.failures[0] > self.limits.retry_window_s:
            self.failures.popleft()
        return len(self.failures) < self.limits.retry_budget

    def _backoff_s(self) -> float:
        exponent = len(self.failures) - 1
        base = min(self.limits.backoff_max_s, self.limits.backoff_initial_s * 2.0**exponent)
        return base * random.uniform(0.8, 1.2)  # noqa: S311  (jitter, not a secret)

    async def _run_once(self) -> tuple[int | None, bool]:
        """Spawn FFmpeg and follow it to its end: (exit code or None if never spawned, stalled)."""
        if self.state != "waiting":  # still waiting for its source, while it tries again
            self.state = "starting"
        self.block, self.rate, self.flowed = None, RateWindow(), False
        self.refused_publisher = None
        self.stderr_tail.clear()
        self.failed_outputs.clear()
        if not self.may_run():  # fenced since: end as fenced, spawn nothing
            self.fenced = True
            self.stop_requested.set()
            return None, False
        if shutil.which(self.job.argv[0]) is None:
            self.stderr_tail.append(f"cannot start {self.job.argv[0]}: not an executable")
            return None, False
        try:
            _empty(self.job.workdirs)
        except OSError as error:
            self.stderr_tail.append(f"cannot prepare {error.filename}: {error.strerror}")
            return None, False
        try:
            process = await self.spawner.spawn(self.job.argv)
        except OSError as error:
            self.stderr_tail.append(f"cannot start {self.job.argv[0]}: {error}")
            return None, False
        self.process, self.pid, self.spawned_at = process, process.pid, time.monotonic()
        self.progressed_at = self.spawned_at
        if self.state != "waiting":  # trying its lost source again is not a new start
            self.observer.starting(self.job, pid=process.pid, restarts=self.restarts)
        readers = [
            asyncio.create_task(self._read_progress(process)),
            asyncio.create_task(self._read_stderr(process)),
        ]
        stalled = await self._watch(process)
        await asyncio.gather(*readers, return_exceptions=True)
        self.process = None
        return process.returncode, stalled

    async def _watch(self, process: asyncio.subprocess.Process) -> bool:
        """Wait for exit; stop it when asked; say when media stops flowing; kill it when it
        stalls. Returns "stalled"."""
        exited = asyncio.create_task(process.wait())
        stopper: asyncio.Task[None] | None = None
        stop_wanted = asyncio.create_task(self.stop_requested.wait())
        try:
            while not exited.done():
                await asyncio.wait(
                    {exited, stop_wanted}, timeout=WATCHDOG_TICK_S, return_when="FIRST_COMPLETED"
                )
                if exited.done():
                    break
                if self.stop_requested.is_set():
                    if stopper is None:
                        stopper = asyncio.create_task(self._terminate(process))
                    continue
                if self.job.listens and not self.flowed:
                    self.progressed_at = time.monotonic()  # waiting for a publisher: no stall
                    if time.monotonic() - self.spawned_at > self.limits.input_loss_s:
                        self._waiting("waiting for a publisher")
                    continue
                silent_s = time.monotonic() - self.progressed_at
                if silent_s > self.limits.stall_timeout_s:
                    log.warning("no progress: killing FFmpeg", extra=self.context)
                    self.stalls += 1
                    _kill_group(process)
                    await exited
                    return True
                if self.flowed and silent_s > self.limits.input_loss_s:
                    self._waiting(
                        f"no media for {silent_s:.1f} s: its source is lost, or an output is "
                        "blocked"
                    )
            return False
        finally:
            stop_wanted.cancel()
            if stopper is not None:
                stopper.cancel()

    def _waiting(self, reason: str) -> None:
        """FFmpeg runs, but no media flows (for now): say so, once."""
        if self.state in ("starting", "running"):
            self.state = "waiting"
            self.observer.waiting(self.job, reason=reason, error=None)

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        """`q` on stdin and SIGINT (FFmpeg finishes its outputs), then SIGKILL the group."""
        if self.fenced:
            _kill_group(process)
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                process.stdin.write(b"q")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        await asyncio.sleep(self.limits.stop_grace_s)
        _kill_group(process)

    async def _read_progress(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        parser = ProgressParser()
        async for raw in process.stdout:
            block = parser.feed(raw.decode(errors="replace"))
            if block is None:
                continue
            previous, self.block = self.block, block
            self.rate.add(block)
            if not (flowing(block) and advanced(previous, block)):
                continue
            self.progressed_at = time.monotonic()
            self.flowed = True
            if self.state != "running":
                if self.source_losses:  # its source is back: that was no error of its own
                    self.source_losses, self.last_error = 0, None
                self.state = "running"
                self.observer.running(self.job)

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            self.stderr_tail.append(line)
            wrong_key = wrong_publisher(line) if self.job.listens else None
            if wrong_key is not None:
                # The listener would take this stream: hang up on it and listen again.
                self.refused_publisher = wrong_key
                _kill_group(process)
            failure = failed_output(line)
            if failure is not None:
                index, error = failure
                self.failed_outputs[index] = error
                log.warning("output %d failed: %s", index, error, extra=self.context)

    # -- what others ask ----------------------------------------------------------------

    def request_stop(self, *, fenced: bool = False) -> None:
        self.fenced = self.fenced or fenced
        self.stop_requested.set()
        if fenced and self.process is not None:
            _kill_group(self.process)

    def stats(self) -> RestreamStats:
        block = self.block
        return RestreamStats(
            restream_id=self.job.restream_id,
            node=self.node,
            generation=self.job.generation,
            state=self.state,
            pid=self.pid if self.process is not None else None,
            bitrate_kbps=_rounded(self.rate.bitrate_kbps()),
            fps=block.fps if block else None,
            speed=block.speed if block else None,
            frames=block.frame if block else None,
            bytes_out=block.total_size_bytes if block else None,
            dup_frames=block.dup_frames if block else 0,
            drop_frames=block.drop_frames if block else 0,
            uptime_s=round(time.monotonic() - self.spawned_at, 1) if self.process else 0.0,
            restarts=self.restarts,
            stalls=self.stalls,
            last_error=self.last_error or logged_error(list(self.stderr_tail)),
            outputs=[
                OutputStatus(
                    index=i,
                    status="failed" if i in self.failed_outputs else "ok",
                    error=self.failed_outputs.get(i),
                )
                for i in range(self.job.outputs)
            ],
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _empty(directories: tuple[str, ...]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True)


def _remove(directories: tuple[str, ...]) -> None:
    """Remove them, and their parent when that leaves it empty."""
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(directory).parent.rmdir()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


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
        self._jobs: dict[str, _Process] = {}

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
        process = _Process(
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

    async def _guard(self, process: _Process) -> None:
        try:
            await process.main()
        except Exception:
            log.exception("supervision crashed", extra=process.context)
            if process.process is not None:
                _kill_group(process.process)
            self.observer.failed(
                process.job,
                error="internal supervisor error",
                stderr_tail=list(process.stderr_tail),
                exit_code=None,
                reason="supervisor error",
            )
        finally:
            _remove(process.job.workdirs)  # before a newer generation prepares them again
            if self._jobs.get(process.job.restream_id) is process:
                del self._jobs[process.job.restream_id]

    async def _end(self, process: _Process, *, fenced: bool = False) -> None:
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
                    stats.bitrate_kbps = _rounded(self.meter(stats.restream_id))
        return found
