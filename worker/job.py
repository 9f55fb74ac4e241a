"""What a job is on this node: one generation of one restream (`Job`), how it is supervised
(`Limits`, from the settings), who hears of it (`Observer`), and the states its process goes
through (`JobState`, moved only through `JOB_TRANSITIONS`). `worker.jobrun` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from common.config import Settings
from common.lifecycle.reports import Report
from common.transitions import TransitionTable
from worker.retry import RetryPolicy


@dataclass(frozen=True)
class Job:
    """One generation of one restream, ready to run."""

    restream_id: str
    generation: int
    argv: list[str]
    listens: bool = False  # waits for a publisher: no stall timeout before one arrives
    # The stream key a publisher must use (a publisher with another is hung up on); None: any
    # stream name is taken, as FFmpeg's own listen mode takes it.
    listen_key: str | None = None
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
    # A stop must let FFmpeg finish its outputs (`common.ffmpeg.outputs.needs_clean_end`);
    # otherwise it ends the process at once.
    clean_end: bool = True


@dataclass(frozen=True)
class Limits:
    """How a job is supervised: the settings of that name (`from_settings`), no defaults."""

    stall_timeout_s: float
    stop_grace_s: float
    input_loss_s: float
    stderr_tail_lines: int
    retry: RetryPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            stall_timeout_s=settings.stall_timeout_s,
            stop_grace_s=settings.stop_grace_s,
            input_loss_s=settings.input_loss_s,
            stderr_tail_lines=settings.stderr_tail_lines,
            retry=RetryPolicy(
                budget=settings.retry_budget,
                window_s=settings.retry_window_s,
                backoff_initial_s=settings.restart_backoff_initial_s,
                backoff_max_s=settings.restart_backoff_max_s,
                source_retry_max_s=settings.source_retry_max_s,
            ),
        )


class Observer(Protocol):
    """Receives what happens to each job, as the reports the control plane records
    (`common.lifecycle.reports`). Called on the supervisor's loop: must not block."""

    def report(self, job: Job, report: Report) -> None: ...


class JobState(StrEnum):
    STARTING = "starting"  # FFmpeg spawned (or about to be), no media yet
    RUNNING = "running"  # media flowing
    WAITING = "waiting"  # no media: its source is lost, or a listener has no publisher yet
    RETRYING = "retrying"  # FFmpeg failed; pausing before the next attempt


J = JobState
JOB_TRANSITIONS: TransitionTable[JobState] = TransitionTable(
    "job",
    {
        # Listening again: after hanging up on a wrong stream key, or once a publisher left.
        J.STARTING: {J.RUNNING, J.WAITING, J.RETRYING, J.STARTING},
        J.RUNNING: {J.WAITING, J.RETRYING, J.STARTING},
        J.WAITING: {J.RUNNING, J.RETRYING, J.STARTING},
        J.RETRYING: {J.STARTING},
    },
)
