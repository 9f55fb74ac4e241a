"""One job's FFmpeg across its restarts (DESIGN §4, §6).

A `JobRun` keeps the *order* (run / stop, asked by the supervisor) apart from the *state* (what
its process does, `JobState`). It spawns FFmpeg, reads its progress and its errors, says when
media stops flowing, kills it when it stalls, and after an exit asks the retry policy
(`worker.retry`) whether and when to try again. Everything it sees goes to an `Observer`; it
never touches storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable

from common.ffmpeg.outcome import (
    ExitReport,
    Outcome,
    chatter,
    classify_exit,
    failed_output,
    logged_error,
    output_header,
    wrong_publisher,
)
from common.ffmpeg.progress import ProgressBlock, ProgressParser, RateWindow, advanced, flowing
from common.lifecycle.reports import (
    Ended,
    Failed,
    Retrying,
    Running,
    Starting,
    Switched,
    Waiting,
)
from common.live import OutputStatus, RestreamStats
from common.logs import about
from worker.job import JOB_TRANSITIONS, Job, JobState, Limits, Observer
from worker.spawn import Spawner, kill_group, prepare_workdirs

log = logging.getLogger(__name__)
WATCHDOG_TICK_S = 0.25  # the shortest sleep of a job's watchdog
DEADLINE_SLACK_S = 0.02  # it wakes this much after a deadline, for the deadline to have passed
PROGRESS_READ_BYTES = 65536  # at most this much of FFmpeg's progress read at once
REFUSED_PAUSE_S = 0.5  # before listening again after hanging up on a wrong stream key
J = JobState


class JobRun:
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
        self.state = J.STARTING
        self.pid: int | None = None
        self.restarts = 0
        self.stalls = 0
        self.failures: tuple[float, ...] = ()  # those the retry budget counts
        self.last_error: str | None = None
        self.stderr_tail: deque[str] = deque(maxlen=limits.stderr_tail_lines)
        self.block: ProgressBlock | None = None
        self.on_air: str | None = None  # continuity: the input on air (of this job's runs)
        self.rate = RateWindow()
        self.flowed = False  # media went through in this attempt
        self.progressed_at = time.monotonic()  # when its output last advanced (or it spawned)
        self.source_losses = 0  # attempts in a row that found the source not there
        self.refused_publisher: str | None = None  # the wrong stream key this attempt hung up on
        self.failed_outputs: dict[int, str] = {}
        self.spawned_at = time.monotonic()
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    def _become(self, state: JobState) -> None:
        if state is not self.state:
            JOB_TRANSITIONS.check(self.state, state)
            self.state = state

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
                self.observer.report(self.job, Ended(report.outcome, exit_code))
                return
            pause_s = self._after_exit(report, exit_code)
            if pause_s is None:
                return  # failed: the retry budget is spent
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), pause_s)
            if self.stop_requested.is_set():
                outcome = Outcome.FENCED if self.fenced else Outcome.STOPPED
                self.observer.report(self.job, Ended(outcome, exit_code))
                return

    def _after_exit(self, report: ExitReport, exit_code: int | None) -> float | None:
        """What an exit of its own leads to: the pause before FFmpeg runs again, or None when
        the job fails for good."""
        if self.refused_publisher is not None:
            self.last_error = (
                f"refused a publisher with the wrong stream key {self.refused_publisher!r}"
            )
            log.warning(self.last_error, extra=self.context)
            return REFUSED_PAUSE_S  # a publisher retrying in a loop
        if self._publisher_left(report.outcome, exit_code):
            log.info("publisher left; listening again", extra=self.context)
            return 0.0
        if report.outcome is Outcome.SOURCE_LOST:
            return self._lost_source(report.reason)
        self.last_error = report.reason
        verdict = self.limits.retry.after_failure(self.failures, time.monotonic())
        self.failures = verdict.failures
        if verdict.pause_s is None:
            window_s = self.limits.retry.window_s
            self.observer.report(
                self.job,
                Failed(
                    error=report.reason,
                    stderr_tail=list(self.stderr_tail),
                    exit_code=exit_code,
                    reason=f"{len(self.failures)} failures within {window_s:g} s",
                ),
            )
            return None
        pause_s = verdict.pause_s * _jitter()
        self.restarts += 1
        self._become(J.RETRYING)
        self.observer.report(
            self.job,
            Retrying(
                error=report.reason,
                stderr_tail=list(self.stderr_tail),
                restarts=self.restarts,
                backoff_s=pause_s,
                exit_code=exit_code,
            ),
        )
        return pause_s

    def _lost_source(self, reason: str) -> float:
        """Its source is not there: wait, then try again, for as long as the job is wanted.
        Not a failure: it counts against no retry budget."""
        self.source_losses += 1
        if self.state is not J.WAITING or reason != self.last_error:  # news, not every attempt
            log.info("source lost: %s", reason, extra=self.context)
            self.observer.report(
                self.job,
                Waiting(
                    reason=f"waiting for its source ({reason}); trying again every few seconds",
                    error=reason,
                ),
            )
        self._become(J.WAITING)
        self.last_error = reason
        return self.limits.retry.source_pause_s(self.source_losses) * _jitter()

    def _publisher_left(self, outcome: Outcome, exit_code: int | None) -> bool:
        """A listen input whose publisher went away (its stream ended, or went silent) after
        sending media: not a failure, just listen again."""
        ended = outcome is Outcome.FAILED and exit_code == 0
        return self.job.listens and self.flowed and (ended or outcome is Outcome.STALLED)

    async def _run_once(self) -> tuple[int | None, bool]:
        """Spawn FFmpeg and follow it to its end: (exit code or None if never spawned, stalled)."""
        if self.state is not J.WAITING:  # still waiting for its source, while it tries again
            self._become(J.STARTING)
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
            prepare_workdirs(self.job.workdirs)
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
        if self.state is not J.WAITING:  # trying its lost source again is not a new start
            self.observer.report(self.job, Starting(pid=process.pid, restarts=self.restarts))
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
                    {exited, stop_wanted},
                    timeout=self._until_due_s(),
                    return_when="FIRST_COMPLETED",
                )
                if exited.done():
                    break
                if self.stop_requested.is_set():
                    # Asked to stop: nothing is due any more but its exit (the stopper kills
                    # it after the grace period).
                    stopper = asyncio.create_task(self._terminate(process))
                    await exited
                    break
                if self._awaiting_publisher():
                    self.progressed_at = time.monotonic()  # waiting for a publisher: no stall
                    if time.monotonic() - self.spawned_at > self.limits.input_loss_s:
                        self._waiting("waiting for a publisher")
                    continue
                silent_s = time.monotonic() - self.progressed_at
                if silent_s > self.limits.stall_timeout_s:
                    log.warning("no progress: killing FFmpeg", extra=self.context)
                    self.stalls += 1
                    kill_group(process)
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

    def _until_due_s(self) -> float:
        """Until the watchdog's next deadline (no publisher yet, media gone, a stall), just
        past it: it sleeps until then rather than a tick at a time (a node runs hundreds of
        these), and wakes at once for an exit or a stop. Media may start to flow meanwhile,
        which brings a deadline nearer: it never sleeps longer than `input_loss_s`."""
        now = time.monotonic()
        if self._awaiting_publisher():
            due = [self.spawned_at + self.limits.input_loss_s]
        else:
            due = [self.progressed_at + self.limits.stall_timeout_s]
            if self.flowed:
                due.append(self.progressed_at + self.limits.input_loss_s)
        ahead = [d - now + DEADLINE_SLACK_S for d in due if d > now]
        return max(WATCHDOG_TICK_S, min([*ahead, self.limits.input_loss_s]))

    def _awaiting_publisher(self) -> bool:
        """A listener no publisher has reached yet (its output header is not written)."""
        return self.job.listens and not self.flowed and self.state is not J.RUNNING

    def _waiting(self, reason: str) -> None:
        """FFmpeg runs, but no media flows (for now): say so, once."""
        if self.state in (J.STARTING, J.RUNNING):
            self._become(J.WAITING)
            self.observer.report(self.job, Waiting(reason))

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        """`q` on stdin and SIGINT (FFmpeg finishes its outputs), then SIGKILL the group; at
        once when nothing of its outputs needs finishing (or it is fenced)."""
        if self.fenced or not self.job.clean_end:
            kill_group(process)
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                process.stdin.write(b"q")
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        await asyncio.sleep(self.limits.stop_grace_s)
        kill_group(process)

    async def _read_progress(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        parser = ProgressParser()
        pending = b""
        # Whatever has arrived, at once: FFmpeg writes a block (a dozen lines) in one go, and
        # a read per line would cost a node of hundreds of FFmpeg more than the parsing.
        while chunk := await process.stdout.read(PROGRESS_READ_BYTES):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                block = parser.feed(raw.decode(errors="replace"))
                if block is None:
                    continue
                previous, self.block = self.block, block
                self.rate.add(block)
                if block.on_air is not None and block.on_air != self.on_air:
                    if self.on_air is not None:  # the first is where it starts, no switch
                        reason = block.on_air_reason or "switched"
                        log.warning("on air: %s (%s)", block.on_air, reason, extra=self.context)
                        self.observer.report(self.job, Switched(block.on_air, reason))
                    self.on_air = block.on_air
                if flowing(block) and advanced(previous, block):
                    self._media_flows(output=True)

    def _media_flows(self, *, output: bool) -> None:
        """Output progress (`output`), or an output's header written: media flows (again).
        Only output arms the input-loss watchdog: an encoder may hold its first packets for
        a second or more after the header (its lookahead); the stall watchdog runs from now."""
        self.progressed_at = time.monotonic()
        self.flowed = self.flowed or output
        if self.state is not J.RUNNING:
            if self.source_losses:  # its source is back: that was no error of its own
                self.source_losses, self.last_error = 0, None
            self._become(J.RUNNING)
            self.observer.report(self.job, Running())

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            if output_header(line) and self.refused_publisher is None:
                self._media_flows(output=False)  # at once: FFmpeg 7+ report progress later
            if not chatter(line):
                self.stderr_tail.append(line)
            wrong_key = wrong_publisher(line) if self.job.listen_key is not None else None
            if wrong_key is not None:
                # The listener would take this stream: hang up on it and listen again.
                self.refused_publisher = wrong_key
                kill_group(process)
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
            kill_group(self.process)

    def stats(self) -> RestreamStats:
        block = self.block
        return RestreamStats(
            restream_id=self.job.restream_id,
            node=self.node,
            generation=self.job.generation,
            state=self.state.value,
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
            on_air=block.on_air if block else None,
            on_air_since=block.on_air_since if block else None,
            outputs=[
                OutputStatus(
                    index=i,
                    status="failed" if i in self.failed_outputs else "ok",
                    error=self.failed_outputs.get(i),
                )
                for i in range(self.job.outputs)
            ],
        )


def _jitter() -> float:
    return random.uniform(0.8, 1.2)  # noqa: S311  (jitter, not a secret)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
