"""The supervisor with a real FFmpeg, and a fake one for crashes, stalls and stubbornness."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import imageio_ffmpeg
import pytest

from common.ffmpeg.outcome import Outcome
from tests.support.media import ffmpeg, free_port
from tests.support.observers import FAKE, FAST, Recorder, fake_job
from tests.support.peers import bound, publisher, running
from tests.support.processes import alive
from tests.support.wait import wait_for
from worker.job import Job, Limits
from worker.jobrun import JobRun
from worker.spawn import Spawner
from worker.supervisor import Supervisor


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@dataclass(frozen=True)
class CountingSpawner(Spawner):
    """Spawns as the worker does, and counts what it is asked to spawn."""

    calls: list[list[str]] = field(default_factory=list)

    async def spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        self.calls.append(argv)
        return await super().spawn(argv)


@contextmanager
def make_supervisor(
    recorder: Recorder, limits: Limits = FAST, spawner: Spawner | None = None
) -> Iterator[Supervisor]:
    supervisor = Supervisor("test-node", limits, recorder, spawner=spawner)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.shutdown(timeout_s=10)


@pytest.fixture
def supervisor(recorder: Recorder) -> Iterator[Supervisor]:
    with make_supervisor(recorder) as started:
        yield started


def real_ffmpeg_job(generation: int = 1, seconds: int = 60) -> Job:
    return Job(
        "r1",
        generation,
        [
            ffmpeg(), "-hide_banner", "-nostats", "-y", "-loglevel", "level+info",
            "-progress", "pipe:1", "-stats_period", "0.5",
            "-re", "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=10:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-b:v", "100k",
            "-f", "mpegts", "-y", "/dev/null",
        ],
    )  # fmt: skip


def test_real_ffmpeg_runs_reports_and_stops(supervisor: Supervisor, recorder: Recorder) -> None:
    assert supervisor.run(real_ffmpeg_job())
    wait_for(lambda: "running" in recorder.names(), what="first progress")
    stats = wait_for(
        lambda: [s for s in supervisor.stats() if s.bitrate_kbps], what="a live bitrate"
    )[0]
    assert (stats.restream_id, stats.generation, stats.state, stats.node) == (
        "r1",
        1,
        "running",
        "test-node",
    )
    assert stats.pid is not None and alive(stats.pid)
    assert supervisor.generations() == {"r1": 1}

    started = time.monotonic()
    assert supervisor.stop("r1", 1)
    assert time.monotonic() - started < FAST.stop_grace_s  # FFmpeg obeyed before the SIGKILL
    assert recorder.names() == ["starting", "running", "ended"]
    assert recorder.last("ended")["outcome"] is Outcome.STOPPED
    assert not alive(stats.pid)
    assert supervisor.generations() == {}


def test_its_working_directories_start_empty_and_go_with_the_job(
    supervisor: Supervisor, recorder: Recorder, tmp_path: Path
) -> None:
    playlist_dir = tmp_path / "media" / "r1" / "out-1"
    playlist_dir.mkdir(parents=True)
    (playlist_dir / "segment_000042.ts").write_bytes(b"from an earlier run")
    job = Job("r1", 1, [sys.executable, FAKE, "stall"], workdirs=(str(playlist_dir),))
    supervisor.run(job)
    wait_for(lambda: "running" in recorder.names(), what="first progress")
    assert playlist_dir.is_dir() and list(playlist_dir.iterdir()) == []
    supervisor.stop("r1", 1)
    assert not (tmp_path / "media" / "r1").exists()  # nothing left to serve
    assert (tmp_path / "media").is_dir()


def test_a_crashing_ffmpeg_is_restarted_then_given_up(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    supervisor.run(fake_job("crash", "2"))
    wait_for(lambda: "failed" in recorder.names(), what="the retry budget to run out")
    assert recorder.names() == [
        "starting", "running", "retrying",
        "starting", "running", "retrying",
        "starting", "running", "failed",
    ]  # fmt: skip
    retry = recorder.last("retrying")
    assert retry["restarts"] == 2 and retry["exit_code"] == 1
    assert retry["error"] == "[fatal] Error opening output files: Connection refused"
    assert 0.04 <= retry["backoff_s"] <= 0.24  # exponential, capped, with jitter
    failed = recorder.last("failed")
    assert failed["reason"] == "3 failures within 60 s"
    assert "Connection refused" in failed["stderr_tail"][0]
    assert supervisor.generations() == {}


def test_an_ended_input_is_a_failure_that_restarts(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    supervisor.run(fake_job("end", "1"))
    wait_for(lambda: "retrying" in recorder.names())
    assert recorder.last("retrying")["error"].startswith("input ended")


def test_a_stalled_ffmpeg_is_killed_and_retried(recorder: Recorder) -> None:
    limits = replace(FAST, stall_timeout_s=1.5, retry=replace(FAST.retry, budget=5))
    with make_supervisor(recorder, limits) as supervisor:
        supervisor.run(fake_job("stall"))
        wait_for(lambda: "retrying" in recorder.names(), timeout_s=5)
        assert recorder.names()[:3] == ["starting", "running", "retrying"]
        assert recorder.last("retrying")["error"] == "killed: no progress within the stall timeout"


def test_an_ffmpeg_ignoring_sigint_is_killed_with_its_group(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pids"
    monkeypatch.setenv("FAKE_FFMPEG_PIDS", str(pid_file))
    limits = replace(FAST, stop_grace_s=0.5)
    with make_supervisor(recorder, limits) as supervisor:
        supervisor.run(fake_job("stubborn"))
        wait_for(lambda: "running" in recorder.names())
        pids = [int(p) for p in wait_for(lambda: pid_file.read_text().split())]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        started = time.monotonic()
        supervisor.stop("r1", 1)
        assert 0.5 <= time.monotonic() - started < 3
        assert recorder.last("ended")["outcome"] is Outcome.STOPPED
        wait_for(lambda: not any(alive(p) for p in pids), timeout_s=3, what="the whole group")


def test_a_newer_generation_replaces_the_older_and_stale_orders_are_ignored(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    supervisor.run(fake_job("stubborn"))
    wait_for(lambda: "running" in recorder.names(1))
    assert supervisor.run(fake_job("stubborn", generation=2))
    assert recorder.names(1)[-1] == "ended"
    wait_for(lambda: "running" in recorder.names(2))
    assert not supervisor.run(fake_job("stubborn", generation=1))  # stale start
    assert not supervisor.stop("r1", 1)  # stale stop
    assert supervisor.run(fake_job("stubborn", generation=2))  # repeated start: no-op
    assert recorder.names(2) == ["starting", "running"]
    assert supervisor.generations() == {"r1": 2}


def test_two_starts_of_a_newer_generation_at_once_run_one_process(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start message and a sync of the same new generation, while the old one is still
    stopping (it ignores SIGINT): both wait for it, and exactly one new process runs."""
    pid_file = tmp_path / "pids"
    spawner = CountingSpawner(Spawner.detect().prefix)
    with make_supervisor(recorder, replace(FAST, stop_grace_s=0.5), spawner) as supervisor:
        supervisor.run(fake_job("stubborn"))
        wait_for(lambda: "running" in recorder.names(1))
        monkeypatch.setenv("FAKE_FFMPEG_PIDS", str(pid_file))  # the new generation's only
        answers: list[bool] = []
        calls = [
            threading.Thread(
                target=lambda: answers.append(supervisor.run(fake_job("stubborn", generation=2)))
            )
            for _ in range(2)
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join(timeout=10)
        assert answers == [True, True]
        # Each job's task reaches its spawn before anything submitted to the loop after its
        # `run` returned: one more call onto the loop, and every spawn asked for is counted.
        supervisor.generations()
        assert len(spawner.calls) == 2  # generation 1, then generation 2: once
        wait_for(lambda: "running" in recorder.names(2))
        spawned = [int(p) for p in pid_file.read_text().split()]
        assert len(spawned) == 2  # one stubborn FFmpeg and its child
        assert supervisor.fence() == 1
        wait_for(lambda: not any(alive(p) for p in spawned), timeout_s=3, what="all gone")


def test_nothing_spawns_while_the_lease_is_not_valid(recorder: Recorder) -> None:
    lease_valid = threading.Event()
    supervisor = Supervisor("n", FAST, recorder, may_run=lease_valid.is_set)
    supervisor.start()
    try:
        assert not supervisor.run(fake_job("stall"))  # fenced node: refused outright
        assert recorder.names() == [] and supervisor.generations() == {}
        lease_valid.set()
        assert supervisor.run(fake_job("crash", "1"))
        wait_for(lambda: "retrying" in recorder.names())
        lease_valid.clear()  # lost between two attempts: the restart does not happen
        wait_for(lambda: "ended" in recorder.names(), what="the job to end as fenced")
        assert recorder.last("ended")["outcome"] is Outcome.FENCED
        assert recorder.names().count("starting") == 1
    finally:
        supervisor.shutdown(timeout_s=10)


def test_fencing_kills_everything_at_once(supervisor: Supervisor, recorder: Recorder) -> None:
    supervisor.run(fake_job("stubborn"))
    wait_for(lambda: "running" in recorder.names())
    pid = recorder.last("starting")["pid"]
    started = time.monotonic()
    assert supervisor.fence() == 1
    assert time.monotonic() - started < 1  # no grace period for a fenced node
    assert recorder.last("ended")["outcome"] is Outcome.FENCED
    assert not alive(pid)


def test_a_warning_of_a_running_ffmpeg_is_not_its_last_error(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    supervisor.run(fake_job("warn"))
    wait_for(lambda: "running" in recorder.names())
    wait_for(lambda: (supervisor.stats()[0].frames or 0) > 2, what="a few progress blocks")
    assert supervisor.stats()[0].last_error is None


def test_a_missing_binary_is_a_failure_with_the_reason(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    supervisor.run(Job("r1", 1, ["/nonexistent/ffmpeg", "-i", "x"]))
    wait_for(lambda: "failed" in recorder.names())
    assert "cannot start /nonexistent/ffmpeg" in recorder.last("failed")["error"]
    assert "starting" not in recorder.names()


@pytest.mark.parametrize("spawner", ["Spawner.detect()", "Spawner(())"], ids=["setpriv", "preexec"])
def test_ffmpeg_dies_with_a_killed_worker(tmp_path: Path, spawner: str) -> None:
    """PR_SET_PDEATHSIG: SIGKILL of the process owning the supervisor takes FFmpeg with it,
    whether set by setpriv or by a preexec_fn."""
    pid_file = tmp_path / "pids"
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from worker.job import Job
from worker.spawn import Spawner
from worker.supervisor import Supervisor
from tests.support.observers import FAST, Recorder
supervisor = Supervisor("n", FAST, Recorder(), spawner={spawner})
supervisor.start()
supervisor.run(Job("r", 1, [sys.executable, {FAKE!r}, "stubborn"]))
print("started", flush=True)
time.sleep(600)
"""
    env = {**os.environ, "FAKE_FFMPEG_PIDS": str(pid_file)}
    owner = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE)
    try:
        assert owner.stdout is not None and owner.stdout.readline() == b"started\n"
        pids = [int(p) for p in wait_for(lambda: pid_file.read_text().split())]
        fake_pid = pids[0]
        assert alive(fake_pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        wait_for(lambda: not alive(fake_pid), timeout_s=3, what="FFmpeg to die with its owner")
    finally:
        if owner.poll() is None:
            owner.kill()
        for pid in [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_publisher_with_the_wrong_stream_key_is_hung_up_on(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    port = free_port()
    listener = [
        ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-progress", "pipe:1", "-stats_period", "0.5",
        "-listen", "1", "-i", f"rtmp://127.0.0.1:{port}/live/the-right-key",
        "-f", "null", "-",
    ]  # fmt: skip
    assert supervisor.run(Job("r1", 1, listener, listens=True, listen_key="the-right-key"))
    wait_for(lambda: bound(port, udp=False), what="the RTMP listener")
    with running(publisher(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/a-wrong-key"])):
        wait_for(lambda: recorder.names().count("starting") >= 2, what="listening again")
        stats = supervisor.stats()[0]
        assert stats.last_error is not None and "a-wrong-key" in stats.last_error
    assert "running" not in recorder.names()  # no frame of it went through
    wait_for(lambda: bound(port, udp=False), what="the RTMP listener again")
    with running(publisher(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/the-right-key"])):
        wait_for(lambda: "running" in recorder.names(), what="the right publisher's frames")
    assert "retrying" not in recorder.names() and "failed" not in recorder.names()


def test_a_listener_without_a_key_takes_any_stream_name(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    """As FFmpeg's own listen mode does, and as encoders configured for another server expect
    (`rtmp://<node>:<port>/live/in`)."""
    port = free_port()
    listener = [
        ffmpeg(), "-hide_banner", "-nostats", "-loglevel", "level+info",
        "-progress", "pipe:1", "-stats_period", "0.5",
        "-listen", "1", "-i", f"rtmp://127.0.0.1:{port}/live/r1",
        "-f", "null", "-",
    ]  # fmt: skip
    assert supervisor.run(Job("r1", 1, listener, listens=True))
    wait_for(lambda: bound(port, udp=False), what="the RTMP listener")
    with running(publisher(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/in"])):
        wait_for(lambda: "running" in recorder.names(), what="the publisher's frames")
        assert recorder.names().count("starting") == 1  # not hung up on


def pull_job(flag: Path, url: str = "rtmp://127.0.0.1:1999/live/x") -> Job:
    """A restream pulling `url`, whose source is up while `flag` exists (the fake FFmpeg)."""
    return replace(fake_job("pull", str(flag), url), source=url)


QUICK = replace(FAST, input_loss_s=0.4, retry=replace(FAST.retry, source_retry_max_s=0.2))


def test_a_lost_source_is_waited_for_past_the_retry_budget_and_resumes(
    recorder: Recorder, tmp_path: Path
) -> None:
    """Refused again and again (the source is down for longer than the retry budget lasts):
    waiting, never failed; back as soon as the source is."""
    flag = tmp_path / "source-up"
    with make_supervisor(recorder, QUICK) as supervisor:
        supervisor.run(pull_job(flag))
        wait_for(lambda: "waiting" in recorder.names(), timeout_s=3, what="waiting")
        waiting = recorder.last("waiting")
        assert waiting["reason"].startswith("waiting for its source ([error] rtmp://")
        assert waiting["error"] == "[error] rtmp://127.0.0.1:1999/live/x: Connection refused"
        time.sleep(1.0)  # a dozen refusals: three would spend the retry budget
        assert "failed" not in recorder.names() and "retrying" not in recorder.names()
        assert supervisor.stats()[0].state == "waiting"
        flag.touch()
        wait_for(lambda: "running" in recorder.names(), timeout_s=3, what="running again")
        assert recorder.names() == ["starting", "waiting", "running"]


def test_media_that_stops_flowing_reads_waiting_until_it_flows_again(
    recorder: Recorder, tmp_path: Path
) -> None:
    """The source went silent mid-stream (FFmpeg blocks in a read): within the input loss
    time the job reads waiting, and running again once media flows, with no restart."""
    flag = tmp_path / "source-up"
    flag.touch()
    with make_supervisor(recorder, QUICK) as supervisor:
        supervisor.run(pull_job(flag))
        wait_for(lambda: "running" in recorder.names(), what="running")
        flag.unlink()
        silent_since = time.monotonic()
        wait_for(lambda: "waiting" in recorder.names(), timeout_s=3, what="waiting")
        assert time.monotonic() - silent_since < QUICK.input_loss_s + 0.5
        assert recorder.last("waiting")["reason"].startswith("no media for 0.")
        flag.touch()
        wait_for(lambda: recorder.names().count("running") == 2, timeout_s=3, what="flowing")
        assert recorder.names() == ["starting", "running", "waiting", "running"]


def test_a_listener_without_a_publisher_reads_waiting(recorder: Recorder) -> None:
    with make_supervisor(recorder, QUICK) as supervisor:
        supervisor.run(replace(fake_job("idle"), listens=True))
        wait_for(lambda: "waiting" in recorder.names(), timeout_s=3, what="waiting")
        assert recorder.last("waiting")["reason"] == "waiting for a publisher"
        time.sleep(QUICK.stall_timeout_s / 5)
        assert recorder.names() == ["starting", "waiting"]  # no stall: it just waits


def test_running_is_reported_when_the_output_header_is_written_not_a_period_later(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    """FFmpeg 7 and later send their first progress report one -stats_period after the
    start; the output's header, written as media begins to flow, says it first. With a period
    of 30 s, running must not wait for it."""
    threaded = imageio_ffmpeg.get_ffmpeg_exe()  # FFmpeg 9
    job = Job(
        "r1",
        1,
        [
            threaded, "-hide_banner", "-nostats", "-y", "-loglevel", "level+info",
            "-progress", "pipe:1", "-stats_period", "30",
            "-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10",
            "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", "/dev/null",
        ],
    )  # fmt: skip
    assert supervisor.run(job)
    wait_for(lambda: "running" in recorder.names(), timeout_s=10, what="running")
    stats = supervisor.stats()[0]
    assert stats.last_error is None  # FFmpeg's info lines are not errors
    assert supervisor.stop("r1", 1)


def test_a_stop_ends_at_once_what_has_nothing_to_finish(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    """A job whose outputs need no clean end (UDP, RTP, the relay) is not asked to finish:
    its FFmpeg (here one that ignores SIGINT and `q`) is ended without the grace period."""
    job = replace(fake_job("stubborn"), clean_end=False)
    assert supervisor.run(job)
    wait_for(lambda: "running" in recorder.names(), what="running")
    started = time.monotonic()
    assert supervisor.stop("r1", 1)
    assert time.monotonic() - started < FAST.stop_grace_s / 2
    assert recorder.last("ended")["outcome"] is Outcome.STOPPED


def test_the_watchdog_sleeps_until_its_next_deadline_not_a_tick_at_a_time(
    recorder: Recorder,
) -> None:
    """A node runs hundreds of jobs: a job whose media flows wakes its watchdog once per
    `input_loss_s`, just after the moment its silence would count, not every tick."""
    run = JobRun(fake_job("steady"), FAST, recorder, node="n", spawner=Spawner(()),
                 may_run=lambda: True)  # fmt: skip
    run.flowed = True
    run.progressed_at = time.monotonic() - 0.5  # its last progress, half a second ago
    assert FAST.input_loss_s - 0.5 < run._until_due_s() <= FAST.input_loss_s - 0.5 + 0.05
    run.progressed_at = time.monotonic() - FAST.input_loss_s - 0.1  # silent: waiting told
    assert run._until_due_s() == FAST.input_loss_s  # the stall is later; media may come back


def test_progress_split_anywhere_across_reads_is_read_whole(recorder: Recorder) -> None:
    """Progress is read in chunks, as it arrives: a block (or a line) cut between two reads
    is put back together."""
    run = JobRun(fake_job("steady"), FAST, recorder, node="n", spawner=Spawner(()),
                 may_run=lambda: True)  # fmt: skip
    blocks = b"".join(
        b"frame=%d\ntotal_size=%d\nout_time_us=%d\nprogress=continue\n" % (n, n * 1000, n * 10**5)
        for n in (1, 2, 3)
    )

    async def read() -> None:
        stdout = asyncio.StreamReader()
        process = type("Process", (), {"stdout": stdout})()
        reader = asyncio.create_task(run._read_progress(process))
        for at in range(0, len(blocks), 7):  # cut mid-line, mid-key, mid-number
            stdout.feed_data(blocks[at : at + 7])
            await asyncio.sleep(0)  # read before the next piece arrives
        stdout.feed_eof()
        await reader

    asyncio.run(read())
    assert run.block is not None
    assert (run.block.frame, run.block.total_size_bytes) == (3, 3000)
    assert recorder.names() == ["running"]  # media flowed


def test_an_encoder_holding_its_first_packets_after_the_header_is_not_a_lost_source(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    """`running` at the output header; but an encoder's lookahead may hold the first packets
    longer than `input_loss_s`: only output progress arms the input-loss watchdog."""
    assert supervisor.run(fake_job("lookahead", str(FAST.input_loss_s + 1.0)))
    wait_for(lambda: "running" in recorder.names(), what="running")
    time.sleep(FAST.input_loss_s + 1.5)  # past the lookahead, and progress since
    assert recorder.names() == ["starting", "running"]
    assert supervisor.stop("r1", 1)


def test_a_stop_waits_out_the_grace_period_without_spinning(
    supervisor: Supervisor, recorder: Recorder
) -> None:
    """An FFmpeg that ignores `q` and SIGINT is killed after the grace period; meanwhile its
    watchdog waits for its exit, it does not poll (this process's own CPU stays low)."""
    assert supervisor.run(fake_job("stubborn"))
    wait_for(lambda: "running" in recorder.names(), what="running")
    cpu, started = time.process_time(), time.monotonic()
    assert supervisor.stop("r1", 1)
    assert time.monotonic() - started >= FAST.stop_grace_s * 0.9  # it was given its grace
    assert time.process_time() - cpu < 0.25 * FAST.stop_grace_s
