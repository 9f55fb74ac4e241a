"""`python -m worker.continuity` as the supervisor runs it: progress with what is on air, and
nothing of it left once it is stopped or its process group is killed (never two copies)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.continuity import output_argv, slate_argv, stage_argv
from common.ffmpeg.placement import Placement
from tests.support.media import ffmpeg, free_port
from tests.support.wait import wait_for


def spec(port: int) -> dict[str, object]:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "resolution_width": 64,
                      "resolution_height": 36, "encoding_rate": 5},
            "continuity": {"slate_text": "Back soon", "input_loss_ms": 300},
            "transcoding": {"video_transcoding": "libx264", "frame_width": 64,
                            "frame_height": 36, "filter_fps": 5, "preset": "ultrafast"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                         "output_stream_url": f"udp://127.0.0.1:{port}"}],
        }
    )  # fmt: skip
    placement = Placement(node_name="n", restream_id="c" * 24)
    return {
        "ffmpeg": ffmpeg(),
        "inputs": [["primary", stage_argv(definition.input, placement)]],
        "slate": slate_argv(definition, "{slate_text_file}"),
        "slate_text": "Back soon",
        "output": output_argv(definition, placement, progress_period_s=0.5),
        "loss_ms": 300,
        "failback_s": 1,
    }


def group_members(group: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == group:
                found.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def gone(process: psutil.Process) -> bool:
    try:
        status: str = process.status()
    except psutil.NoSuchProcess:
        return True
    return status == "zombie"  # psutil.STATUS_ZOMBIE


@pytest.fixture
def runner() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.continuity", json.dumps(spec(free_port()))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, as the supervisor runs it
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def on_air_reports(process: subprocess.Popen[str], wanted: str, within_s: float) -> list[str]:
    assert process.stdout is not None
    seen, deadline = [], time.monotonic() + within_s
    while time.monotonic() < deadline:
        line = process.stdout.readline().strip()
        if line.startswith("on_air="):
            seen.append(line.removeprefix("on_air="))
            if seen[-1] == wanted:
                return seen
    raise AssertionError(f"never on air: {wanted} (saw {seen})")


def test_a_killed_group_leaves_nothing_running(runner: subprocess.Popen[str]) -> None:
    on_air_reports(runner, "primary", within_s=30)
    children = psutil.Process(runner.pid).children(recursive=True)
    assert len(children) >= 3  # the output stage, the primary's stage, the slate's
    os.killpg(runner.pid, signal.SIGKILL)  # what fencing does
    runner.wait()
    wait_for(lambda: all(gone(c) for c in children), timeout_s=5, every_s=0.1, what="all gone")


def test_q_ends_the_output_and_the_stages_go_with_it(runner: subprocess.Popen[str]) -> None:
    on_air_reports(runner, "primary", within_s=30)
    assert runner.stdin is not None
    runner.stdin.write("q")  # how the supervisor asks FFmpeg to finish
    runner.stdin.flush()
    assert runner.wait(15) == 0
    wait_for(lambda: not group_members(runner.pid), timeout_s=5, every_s=0.1, what="all gone")


def test_a_stage_that_dies_is_bridged_by_the_slate_and_started_again(
    runner: subprocess.Popen[str],
) -> None:
    on_air_reports(runner, "primary", within_s=30)
    (stage,) = [
        p
        for p in group_members(runner.pid)
        if p.pid != runner.pid and "testsrc2" in " ".join(p.cmdline())
    ]  # the primary's stage (the runner's own arguments name it too)
    stage.kill()
    on_air_reports(runner, "slate", within_s=10)
    on_air_reports(runner, "primary", within_s=15)  # its stage started again
    assert runner.poll() is None  # the output stage ran on throughout
