"""Every input family into every output family, on the real FFmpeg, through the worker's
supervisor with the command lines of `build_argv` — and ffprobe on what comes out.

Each case: the peers a restream needs (a publisher, a server, a receiver that records), the
restream itself, then the facts of the recording: codec, size, frame rate, key frame interval,
audio codec and sample rate, bitrate. Short runs of small frames keep the matrix quick.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.ffmpeg.argv import Placement, build_argv
from common.restreams.schemas import RestreamDefinition
from tests.support.media import audio_facts, ffmpeg, free_port, video_facts
from tests.support.peers import (
    http_files,
    nginx_rtmp,
    publisher,
    receiver,
    rtsp_server,
    running,
    srt_relay,
)
from tests.support.wait import wait_for
from tests.worker.test_supervisor import Recorder
from worker.supervisor import Job, Limits, Supervisor

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
    supervisor = Supervisor("matrix", Limits(stall_timeout_s=20), recorder)
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


def test_rtmp_pull_copied_to_udp(tmp_path: Path) -> None:
    with nginx_rtmp(tmp_path) as port:
        out, sink = tmp_path / "out.ts", free_port()
        with running(publisher(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/src"])):
            time.sleep(1)
            definition = {
                "input": {"input_type": "INPUT_TYPE_RTMP_URL",
                          "input_stream_url": f"rtmp://127.0.0.1:{port}/live/src"},
                "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL",
                             "output_stream_url": f"udp://127.0.0.1:{sink}?pkt_size=1316"}],
            }  # fmt: skip
            with running(receiver(["-i", f"udp://127.0.0.1:{sink}"], out, SECONDS)) as check:
                with restream(definition, tmp_path):
                    check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width, facts.height) == ("h264", 320, 180)  # copied, untouched
    assert facts.gop_s == pytest.approx(2.0, abs=0.1)
    assert audio_facts(out) == ("aac", 48000)


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
                lambda: (now := _segments(playlist)) and now[0] != first[0] and now,
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


def test_rtsp_pull_to_an_rtmp_listener(tmp_path: Path) -> None:
    with rtsp_server(tmp_path / "rtsp.log") as (publish, play):
        out, target = tmp_path / "out.ts", free_port()
        with running(publisher(["-f", "rtsp", f"rtsp://127.0.0.1:{publish}/cam"])):
            time.sleep(1.5)
            definition = {
                "input": {"input_type": "INPUT_TYPE_RTSP_URL",
                          "input_stream_url": f"rtsp://127.0.0.1:{play}/cam"},
                "transcoding": {"video_transcoding": "libx264", "frame_width": 160,
                                "frame_height": 90, "preset": "ultrafast"},
                "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
                             "output_stream_url": f"rtmp://127.0.0.1:{target}/live", "output_stream_key": "k"}],
            }  # fmt: skip
            listen = ["-listen", "1", "-i", f"rtmp://127.0.0.1:{target}/live/k"]
            with running(receiver(listen, out, SECONDS)) as check:
                time.sleep(0.3)
                with restream(definition, tmp_path):
                    check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width, facts.height) == ("h264", 160, 90)


def test_udp_pull_to_srt(tmp_path: Path) -> None:
    feed, target, out = free_port(), free_port(), tmp_path / "out.ts"
    definition = {
        "input": {"input_type": "INPUT_TYPE_UDP_URL",
                  "input_stream_url": f"udp://127.0.0.1:{feed}?overrun_nonfatal=1"},
        "outputs": [{"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": f"srt://127.0.0.1:{target}"}],
    }  # fmt: skip
    with running(
        receiver(["-i", f"srt://127.0.0.1:{target}?mode=listener"], out, SECONDS)
    ) as check:
        with restream(definition, tmp_path, wait_running=False):
            with running(publisher(["-f", "mpegts", f"udp://127.0.0.1:{feed}?pkt_size=1316"])):
                check.wait(30)
    assert video_facts(recorded(out)).codec == "h264"


def test_http_pull_to_rtp(tmp_path: Path) -> None:
    source, target, out = free_port(), free_port(), tmp_path / "out.ts"
    serve = publisher(["-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{source}/live.ts"])
    definition = {
        "input": {"input_type": "INPUT_TYPE_HTTP_URL",
                  "input_stream_url": f"http://127.0.0.1:{source}/live.ts"},
        "transcoding": {"video_transcoding": "libx264", "preset": "ultrafast", "gop": 50},
        "outputs": [{"output_type": "OUTPUT_TYPE_RTP_URL", "output_stream_url": f"rtp://127.0.0.1:{target}"}],
    }  # fmt: skip
    with running(receiver(["-i", f"rtp://127.0.0.1:{target}"], out, SECONDS)) as check:
        with running(serve):
            time.sleep(0.5)
            with restream(definition, tmp_path):
                check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width) == ("h264", 320)


def test_hls_pull_to_nginx_rtmp(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    hls = ["-f", "hls", "-hls_time", "1", "-hls_list_size", "5",
           "-hls_flags", "delete_segments", str(source / "live.m3u8")]  # fmt: skip
    with running(publisher(hls)), http_files(source) as http, nginx_rtmp(tmp_path) as port:
        wait_for((source / "live.m3u8").exists, timeout_s=10, what="the source playlist")
        time.sleep(2)
        definition = {
            "input": {"input_type": "INPUT_TYPE_HLS_URL",
                      "input_stream_url": f"http://127.0.0.1:{http}/live.m3u8"},
            "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
                         "output_stream_url": f"rtmp://127.0.0.1:{port}/live/hls"}],
        }  # fmt: skip
        out = tmp_path / "out.ts"
        with restream(definition, tmp_path):
            time.sleep(1)
            with running(receiver(["-i", f"rtmp://127.0.0.1:{port}/live/hls"], out, 3)) as check:
                check.wait(30)
    assert video_facts(recorded(out)).codec == "h264"


def test_dash_pull_to_udp(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    dash = ["-f", "dash", "-seg_duration", "1", "-window_size", "5",
            "-use_template", "1", "-use_timeline", "1", str(source / "live.mpd")]  # fmt: skip
    sink, out = free_port(), tmp_path / "out.ts"
    with running(publisher(dash)), http_files(source) as http:
        wait_for((source / "live.mpd").exists, timeout_s=10, what="the manifest")
        time.sleep(2)
        definition = {
            "input": {"input_type": "INPUT_TYPE_MPEG_DASH_URL",
                      "input_stream_url": f"http://127.0.0.1:{http}/live.mpd"},
            "transcoding": {"video_transcoding": "libx264", "preset": "ultrafast"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": f"udp://127.0.0.1:{sink}"}],
        }  # fmt: skip
        with running(receiver(["-i", f"udp://127.0.0.1:{sink}"], out, 3)) as check:
            with restream(definition, tmp_path):
                check.wait(30)
    assert video_facts(recorded(out)).codec == "h264"


# -- listen inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_type", "publish"),
    [
        ("INPUT_TYPE_SRT_LISTEN", lambda p: ["-f", "mpegts", f"srt://127.0.0.1:{p}"]),
        ("INPUT_TYPE_RTMP_LISTEN", lambda p: ["-f", "flv", f"rtmp://127.0.0.1:{p}/live/r1"]),
        ("INPUT_TYPE_RTSP_LISTEN", lambda p: ["-f", "rtsp", "-rtsp_transport", "tcp",
                                              f"rtsp://127.0.0.1:{p}/live/r1"]),
        ("INPUT_TYPE_UDP_LISTEN", lambda p: ["-f", "mpegts", f"udp://127.0.0.1:{p}?pkt_size=1316"]),
        ("INPUT_TYPE_HTTP_LISTEN", lambda p: ["-f", "mpegts", "-method", "POST",
                                              f"http://127.0.0.1:{p}/live/r1"]),
    ],
)  # fmt: skip
def test_listen_inputs_take_a_publisher(tmp_path: Path, input_type: str, publish: Any) -> None:
    port, sink, out = free_port(), free_port(), tmp_path / "out.ts"
    definition = {
        "input": {"input_type": input_type, "input_stream_listen_port": {"port": port}},
        "transcoding": {"video_transcoding": "libx264", "preset": "ultrafast", "frame_width": 160},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": f"udp://127.0.0.1:{sink}"}],
    }  # fmt: skip
    with running(receiver(["-i", f"udp://127.0.0.1:{sink}"], out, 3)) as check:
        with restream(definition, tmp_path, wait_running=False) as (_, events):
            time.sleep(1)  # listening, no publisher yet: waiting is not a failure
            assert "retrying" not in events.names()
            with running(publisher(publish(port))):
                wait_for(lambda: "running" in events.names(), timeout_s=20, what="running")
                check.wait(30)
    facts = video_facts(recorded(out))
    assert (facts.codec, facts.width, facts.height) == ("h264", 160, 90)


# -- the other outputs ----------------------------------------------------------------------


def test_http_and_rtsp_outputs(tmp_path: Path) -> None:
    http_port, rtsp_port = free_port(), free_port()
    http_out, rtsp_out = tmp_path / "http.ts", tmp_path / "rtsp.ts"
    definition = {
        "input": raw_signal(),
        "outputs": [
            {"output_type": "OUTPUT_TYPE_HTTP_URL", "output_stream_url": f"http://127.0.0.1:{http_port}/in"},
            {"output_type": "OUTPUT_TYPE_RTSP_URL", "output_stream_url": f"rtsp://127.0.0.1:{rtsp_port}/live"},
        ],
    }  # fmt: skip
    http_check = receiver(["-listen", "1", "-i", f"http://127.0.0.1:{http_port}/in"], http_out, 3)
    rtsp_check = receiver(
        ["-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{rtsp_port}/live"], rtsp_out, 3
    )
    with running(http_check) as first, running(rtsp_check) as second:
        time.sleep(0.5)
        with restream(definition, tmp_path):
            first.wait(30)
            second.wait(30)
    assert video_facts(recorded(http_out)).codec == "h264"
    assert video_facts(recorded(rtsp_out)).codec == "h264"


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
