"""`python -m worker.continuity` as the supervisor runs it: progress with what is on air, and
nothing of it left once it is stopped or its process group is killed (never two copies)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.continuity import runner_spec
from common.ffmpeg.placement import Placement
from tests.support.media import ffmpeg, free_port
from tests.support.wait import wait_for


def spec(port: int) -> dict[str, object]:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "resolution_width": 64,
                      "resolution_height": 36, "encoding_rate": 5},
            "continuity": {"slate_text": "Back soon", "input_loss_ms": 300, "failback_s": 1},
            "transcoding": {"video_transcoding": "libx264", "frame_width": 64,
                            "frame_height": 36, "filter_fps": 5, "preset": "ultrafast"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                         "output_stream_url": f"udp://127.0.0.1:{port}"}],
        }
    )  # fmt: skip
    return spec_of(definition, "c")


def spec_of(definition: RestreamDefinition, restream: str) -> dict[str, object]:
    """What the worker gives the runner for `definition` (`runner_spec`, as `worker.launch`)."""
    placement = Placement(node_name="n", restream_id=restream * 24)
    return runner_spec(  # the slate image is served on loopback
        definition, placement, ffmpeg=ffmpeg(), progress_period_s=0.5, allow_private=True
    )


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


# A source whose picture is black, or still, or whose sound is silence (the rest is well).
WELL = ("testsrc2=s=64x36:r=10", "sine=frequency=440:sample_rate=48000")
IMPAIRED = {
    "black": ("color=black:s=64x36:r=10", WELL[1]),
    "frozen": ("color=white:s=64x36:r=10", WELL[1]),
    "silent": (WELL[0], "anullsrc=r=48000:cl=stereo"),
}
CHECK = {"black": "video_black_ms", "frozen": "video_frozen_ms", "silent": "audio_silence_ms"}
SAID = {"black": "black", "frozen": "frozen", "silent": "without sound"}


@pytest.mark.parametrize("impairment", sorted(IMPAIRED))
def test_an_input_that_delivers_useless_media_is_lost(impairment: str) -> None:
    """A primary black, frozen or silent for the time asked is switched away from, to the
    backup, with the reason said; the checks are real FFmpeg filters on a real stream."""
    port = free_port()
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_UDP_URL",
                      "input_stream_url": f"udp://127.0.0.1:{port}"},
            "backup_input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                             "resolution_width": 64, "resolution_height": 36, "encoding_rate": 10},
            "continuity": {CHECK[impairment]: 1000, "input_loss_ms": 300, "failback_s": 0},
            "transcoding": {"video_transcoding": "libx264", "frame_width": 64,
                            "frame_height": 36, "filter_fps": 10, "preset": "ultrafast"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                         "output_stream_url": f"udp://127.0.0.1:{free_port()}"}],
        }
    )  # fmt: skip
    run_spec = spec_of(definition, "d")  # failback_s 0: the primary as soon as it is well
    runner = subprocess.Popen(
        [sys.executable, "-m", "worker.continuity", json.dumps(run_spec)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    source = send(WELL, port)
    try:
        assert "primary" in on_air_reports(runner, "primary", within_s=20)
        source.kill()
        source.wait()
        source = send(IMPAIRED[impairment], port)  # the same input, now of no use
        wanted = f"on_air_reason=primary {SAID[impairment]} for over 1000 ms"
        reasons = []
        deadline = time.monotonic() + 20
        assert runner.stdout is not None
        while wanted not in reasons and time.monotonic() < deadline:
            line = runner.stdout.readline().strip()
            if line.startswith("on_air"):
                reasons.append(line)
        assert wanted in reasons
        assert reasons[reasons.index(wanted) - 2] == "on_air=backup"
    finally:
        source.kill()
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
        source.wait()


def send(media: tuple[str, str], port: int) -> subprocess.Popen[bytes]:
    video, audio = media
    return subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", video,
         "-re", "-f", "lavfi", "-i", audio, "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-g", "5", "-c:a", "aac", "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def images(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on loopback with a red PNG at /red.png (and nothing else)."""
    subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
         "color=red:s=32x18", "-frames:v", "1", str(tmp_path / "red.png")],
        check=True,
    )  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("image", "shown"), [("red.png", "red"), ("gone.png", "black")])
def test_the_slate_shows_the_operators_image(images: str, image: str, shown: str) -> None:
    """An input that never delivers: the slate is on air, the image fetched and fitted to the
    output; one that cannot be fetched leaves the black card, and says so in the log."""
    out = free_port()
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_UDP_URL",
                      "input_stream_url": f"udp://127.0.0.1:{free_port()}"},
            "continuity": {"slate_image_url": f"{images}/{image}", "input_loss_ms": 500},
            "transcoding": {"video_transcoding": "libx264", "frame_width": 64,
                            "frame_height": 36, "filter_fps": 10, "preset": "ultrafast"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                         "output_stream_url": f"udp://127.0.0.1:{out}?pkt_size=1316"}],
        }
    )  # fmt: skip
    run_spec = spec_of(definition, "e")
    receiver = subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-i", f"udp://127.0.0.1:{out}", "-map", "0:v",
         "-vf", "showinfo", "-f", "null", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runner = subprocess.Popen(
        [sys.executable, "-m", "worker.continuity", json.dumps(run_spec)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert receiver.stderr is not None
        means: list[tuple[int, ...]] = []
        deadline = time.monotonic() + 30
        while len(means) < 10 and time.monotonic() < deadline:
            found = re.search(r" mean:\[(\d+) (\d+) (\d+)\]", receiver.stderr.readline())
            if found:
                means.append(tuple(int(v) for v in found.groups()))
        y, _, v = means[-1]
        assert (v > 200) if shown == "red" else (y < 20 and 120 < v < 136), means[-1]
    finally:
        receiver.kill()
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    assert runner.stderr is not None
    log = runner.stderr.read()
    if shown == "black":
        assert f"slate image {images}/gone.png not shown: HTTP 404" in log
