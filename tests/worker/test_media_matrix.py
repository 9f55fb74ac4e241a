"""Media through the worker's supervisor with the command lines of `build_argv`, on the real
FFmpeg, checked with ffprobe: every property of one transcode, HEVC, an HLS window that moves,
and an output that fails alone. `test_media_cross.py` runs every input into every output.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.argv import build_argv
from common.ffmpeg.placement import Placement
from tests.support.media import audio_facts, ffmpeg, free_port, video_facts
from tests.support.observers import FAST, Recorder
from tests.support.peers import (
    nginx_rtmp,
    publisher,
    receiver,
    running,
    srt_relay,
)
from tests.support.wait import wait_for
from worker.job import Job
from worker.supervisor import Supervisor

pytestmark = pytest.mark.e2e
SECONDS = 4  # recorded per case


@contextlib.contextmanager
def restream(
    definition: dict[str, Any], tmp: Path, *, wait_running: bool = True
) -> Iterator[tuple[Supervisor, Recorder]]:
    """The restream running under a supervisor, as a worker runs it."""
    parsed = RestreamDefinition.model_validate(definition)
    for i, output in enumerate(parsed.outputs):
        output.id = output.id or f"out{i}"
    placement = Placement("matrix", restream_id="r1", media_dir=str(tmp / "media"))
    for output in parsed.outputs:
        (tmp / "media" / "r1" / (output.id or "")).mkdir(parents=True, exist_ok=True)
    argv = [ffmpeg(), *build_argv(parsed, placement, progress_period_s=0.5)]
    listens = parsed.input.input_stream_listen_port is not None
    recorder = Recorder()
    supervisor = Supervisor("matrix", replace(FAST, stall_timeout_s=20), recorder)
    supervisor.start()
    try:
        supervisor.run(Job("r1", 1, argv, listens=listens, outputs=len(parsed.outputs)))
        if wait_running:
            wait_for(lambda: "running" in recorder.names(), timeout_s=20, what="running")
        yield supervisor, recorder
    finally:
        supervisor.shutdown(10)


def raw_signal(size: tuple[int, int] = (320, 180), rate: int = 25) -> dict[str, Any]:
    return {
        "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
        "resolution_width": size[0],
        "resolution_height": size[1],
        "encoding_rate": rate,
        "test_video_bitrate": 400,
    }


def recorded(path: Path) -> Path:
    wait_for(lambda: path.exists() and path.stat().st_size > 0, timeout_s=30, what=str(path))
    return path


# -- test video -----------------------------------------------------------------------------


def test_test_video_to_rtmp_with_every_property_checked(tmp_path: Path) -> None:
    """The full check: codec, size, frame rate, GOP, audio codec and rate, bitrate ±20%."""
    with nginx_rtmp(tmp_path) as port:
        definition = {
            "input": raw_signal((1280, 720), 30),
            "transcoding": {
                "video_transcoding": "libx264", "output_video_bitrate": 600, "gop": 50,
                "frame_width": 640, "frame_height": 360, "filter_fps": 25, "preset": "veryfast",
                "audio_trancoding": "aac", "sample_rate": 44100, "output_audio_bitrate": 64,
            },
            "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
                         "output_stream_url": f"rtmp://127.0.0.1:{port}/live", "output_stream_key": "out"}],
        }  # fmt: skip
        out = tmp_path / "out.ts"
        with restream(definition, tmp_path):
            time.sleep(1)  # let the encoder settle before measuring its bitrate
            with running(
                receiver(["-i", f"rtmp://127.0.0.1:{port}/live/out"], out, SECONDS)
            ) as check:
                check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width, facts.height) == ("h264", 640, 360)
    assert facts.fps == pytest.approx(25, abs=0.5)
    assert facts.gop_s == pytest.approx(2.0, abs=0.1)  # gop 50 at 25 fps
    assert facts.bitrate_kbps == pytest.approx(600, rel=0.2)
    assert audio_facts(out) == ("aac", 44100)


def test_test_video_to_srt_in_hevc(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out.ts"
    definition = {
        "input": raw_signal(),
        "transcoding": {"video_transcoding": "libx265", "preset": "ultrafast",
                        "output_video_bitrate": 300, "gop": 25, "audio_trancoding": "mp3"},
        "outputs": [{"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": f"srt://127.0.0.1:{port}"}],
    }  # fmt: skip
    with running(receiver(["-i", f"srt://127.0.0.1:{port}?mode=listener"], out, SECONDS)) as check:
        time.sleep(0.3)
        with restream(definition, tmp_path):
            check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width, facts.height) == ("hevc", 320, 180)
    assert facts.gop_s == pytest.approx(1.0, abs=0.1)
    assert audio_facts(out)[0] == "mp3"


# -- pulls ----------------------------------------------------------------------------------


def test_srt_pull_through_srt_live_transmit_to_hls(tmp_path: Path) -> None:
    feed, listener = free_port(), free_port()
    definition = {
        "input": {"input_type": "INPUT_TYPE_SRT_URL",
                  "input_stream_url": f"srt://127.0.0.1:{listener}?latency=200000"},
        "transcoding": {"video_transcoding": "libx264", "gop": 25, "preset": "ultrafast"},
        "outputs": [{"output_type": "OUTPUT_TYPE_HLS"}],
    }  # fmt: skip
    relay = srt_relay(f"udp://:{feed}", f"srt://:{listener}?mode=listener", tmp_path / "slt")
    with relay, running(publisher(["-f", "mpegts", f"udp://127.0.0.1:{feed}?pkt_size=1316"])):
        with restream(definition, tmp_path):
            playlist = tmp_path / "media" / "r1" / "out0" / "index.m3u8"
            first = wait_for(lambda: _segments(playlist), timeout_s=20, what="segments")
            moved = wait_for(
                lambda: ((now := _segments(playlist)) and now[0] != first[0] and now) or None,
                timeout_s=30,
                what="the playlist window to move",
            )
    assert len(moved) <= 6  # the window
    kept = sorted((tmp_path / "media" / "r1" / "out0").glob("*.ts"))
    assert len(kept) <= 6 + 3  # old segments deleted (FFmpeg keeps a couple more)
    facts = video_facts(playlist.parent / moved[-1])
    assert (facts.codec, facts.width) == ("h264", 320)
    durations = [
        float(line.split(":")[1].rstrip(","))
        for line in playlist.read_text().splitlines()
        if line.startswith("#EXTINF")
    ]
    steady = durations[:-1]  # the last one ends with the restream
    assert steady == pytest.approx([1.0] * len(steady), abs=0.15)  # one GOP each


def _segments(playlist: Path) -> list[str]:
    if not playlist.exists():
        return []
    return [line for line in playlist.read_text().splitlines() if line.endswith(".ts")]


def test_one_failing_output_does_not_take_the_others_down(tmp_path: Path) -> None:
    sink, dead, out = free_port(), free_port(), tmp_path / "out.ts"
    definition = {
        "input": raw_signal(),
        "outputs": [
            {"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": f"rtmp://127.0.0.1:{dead}/x/y"},
            {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": f"udp://127.0.0.1:{sink}"},
        ],
    }  # fmt: skip
    with running(receiver(["-i", f"udp://127.0.0.1:{sink}"], out, 3)) as check:
        with restream(definition, tmp_path) as (supervisor, _):
            check.wait(30)
            stats = wait_for(lambda: supervisor.stats()[0].outputs, timeout_s=5)
    assert [(o.index, o.status) for o in stats] == [(0, "failed"), (1, "ok")]
    assert "Connection refused" in (stats[0].error or "")
    assert video_facts(recorded(out)).codec == "h264"
