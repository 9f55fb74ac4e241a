"""Every input family into every output family, on the real FFmpeg.

For each kind of input (test signal, SRT listen and pull, RTMP listen and pull, RTSP listen and
pull, UDP listen and pull, HTTP listen and pull, HLS, DASH) one restream sends a single encode
to all seven kinds of output at once (RTMP, SRT, RTSP, UDP, HTTP, RTP, HLS) — the whole cross
product in one run per input. Receivers (FFmpeg in listen mode) record each output and ffprobe
checks codec, size, frame rate, key frame interval, audio codec and sample rate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.media import audio_facts, free_port, video_facts
from tests.support.peers import (
    bound,
    http_files,
    nginx_rtmp,
    publisher,
    receiver,
    rtsp_server,
    running,
    srt_relay,
)
from tests.support.wait import wait_for
from tests.worker.test_media_matrix import restream

# Its checks hold real-time media to tight figures: it shares a test process with the fault
# suite (which breaks farms and spawns fifty FFmpeg at once) rather than run beside it.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("realtime")]
RECORD_S = 3
HLS_ID = "0123456789abcdef01234567"  # the id of the HLS output: its directory
TRANSCODING = {
    "video_transcoding": "libx264", "preset": "ultrafast", "frame_width": 256,
    "frame_height": 144, "filter_fps": 25, "gop": 25,
    "audio_trancoding": "aac", "sample_rate": 44100,
}  # fmt: skip


@dataclass
class Source:
    """An input for a case: its spec, and the peers that feed it (entered before or after the
    restream starts, as a listen input needs the restream to listen first)."""

    spec: dict[str, Any]
    before: contextlib.ExitStack
    after: Callable[[], contextlib.AbstractContextManager[Any]] | None = None


SourceMaker = Callable[[Path, contextlib.ExitStack], Source]


def signal_source(tmp: Path, stack: contextlib.ExitStack) -> Source:
    spec = {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "resolution_width": 320,
            "resolution_height": 180, "encoding_rate": 25}  # fmt: skip
    return Source(spec, stack)


def listen(
    input_type: str, publish: Callable[[int], list[str]], *, udp: bool = False
) -> SourceMaker:
    def make(tmp: Path, stack: contextlib.ExitStack) -> Source:
        port = free_port()
        spec = {"input_type": input_type, "input_stream_listen_port": {"port": port}}

        def feed() -> contextlib.AbstractContextManager[Any]:
            # Publish once the restream listens: a publisher finding nobody would just exit.
            wait_for(lambda: bound(port, udp=udp), timeout_s=10, what=f"listening on {port}")
            return running(publisher(publish(port)))

        return Source(spec, stack, feed)

    return make


def srt_pull(tmp: Path, stack: contextlib.ExitStack) -> Source:
    feed, relay = free_port(), free_port()
    stack.enter_context(srt_relay(f"udp://:{feed}", f"srt://:{relay}?mode=listener", tmp / "slt"))
    stack.enter_context(
        running(publisher(["-f", "mpegts", f"udp://127.0.0.1:{feed}?pkt_size=1316"]))
    )
    return Source(
        {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": f"srt://127.0.0.1:{relay}"}, stack
    )


def rtmp_pull(tmp: Path, stack: contextlib.ExitStack) -> Source:
    port = stack.enter_context(nginx_rtmp(tmp))
    stack.enter_context(running(publisher(["-f", "flv", f"rtmp://127.0.0.1:{port}/live/src"])))
    time.sleep(1)
    return Source(
        {
            "input_type": "INPUT_TYPE_RTMP_URL",
            "input_stream_url": f"rtmp://127.0.0.1:{port}/live/src",
        },
        stack,
    )


def rtsp_pull(tmp: Path, stack: contextlib.ExitStack) -> Source:
    publish, play = stack.enter_context(rtsp_server(tmp / "rtsp.log"))
    stack.enter_context(running(publisher(["-f", "rtsp", f"rtsp://127.0.0.1:{publish}/cam"])))
    time.sleep(1.5)
    return Source(
        {"input_type": "INPUT_TYPE_RTSP_URL", "input_stream_url": f"rtsp://127.0.0.1:{play}/cam"},
        stack,
    )


def udp_pull(tmp: Path, stack: contextlib.ExitStack) -> Source:
    port = free_port()
    spec = {"input_type": "INPUT_TYPE_UDP_URL", "input_stream_url": f"udp://127.0.0.1:{port}"}
    return Source(
        spec,
        stack,
        lambda: running(publisher(["-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"])),
    )


def http_pull(tmp: Path, stack: contextlib.ExitStack) -> Source:
    port = free_port()
    stack.enter_context(
        running(publisher(["-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/live.ts"]))
    )
    time.sleep(0.5)
    return Source(
        {
            "input_type": "INPUT_TYPE_HTTP_URL",
            "input_stream_url": f"http://127.0.0.1:{port}/live.ts",
        },
        stack,
    )


def segmented(kind: str) -> SourceMaker:
    def make(tmp: Path, stack: contextlib.ExitStack) -> Source:
        source = tmp / "source"
        source.mkdir()
        if kind == "hls":
            out = ["-f", "hls", "-hls_time", "1", "-hls_list_size", "5",
                   "-hls_flags", "delete_segments", str(source / "live.m3u8")]  # fmt: skip
            name, input_type = "live.m3u8", "INPUT_TYPE_HLS_URL"
        else:
            out = ["-f", "dash", "-seg_duration", "1", "-window_size", "5", "-use_template", "1",
                   "-use_timeline", "1", str(source / "live.mpd")]  # fmt: skip
            name, input_type = "live.mpd", "INPUT_TYPE_MPEG_DASH_URL"
        stack.enter_context(running(publisher(out)))
        port = stack.enter_context(http_files(source))
        wait_for((source / name).exists, timeout_s=10, what=name)
        time.sleep(2)
        return Source(
            {"input_type": input_type, "input_stream_url": f"http://127.0.0.1:{port}/{name}"}, stack
        )

    return make


INPUTS: dict[str, SourceMaker] = {
    "test signal": signal_source,
    "SRT listen": listen("INPUT_TYPE_SRT_LISTEN", lambda p: ["-f", "mpegts", f"srt://127.0.0.1:{p}"], udp=True),
    "SRT pull": srt_pull,
    "RTMP listen": listen("INPUT_TYPE_RTMP_LISTEN", lambda p: ["-f", "flv", f"rtmp://127.0.0.1:{p}/live/r1"]),
    "RTMP pull": rtmp_pull,
    "RTSP listen": listen("INPUT_TYPE_RTSP_LISTEN", lambda p: ["-f", "rtsp", "-rtsp_transport", "tcp", f"rtsp://127.0.0.1:{p}/live/r1"]),
    "RTSP pull": rtsp_pull,
    "UDP listen": listen("INPUT_TYPE_UDP_LISTEN", lambda p: ["-f", "mpegts", f"udp://127.0.0.1:{p}?pkt_size=1316"], udp=True),
    "UDP pull": udp_pull,
    "HTTP listen": listen("INPUT_TYPE_HTTP_LISTEN", lambda p: ["-f", "mpegts", "-method", "POST", f"http://127.0.0.1:{p}/live/r1"]),
    "HTTP pull": http_pull,
    "HLS pull": segmented("hls"),
    "DASH pull": segmented("dash"),
}  # fmt: skip


@contextlib.contextmanager
def receivers(tmp: Path) -> Iterator[tuple[list[dict[str, Any]], dict[str, Path], list[Any]]]:
    """A receiver per output kind, listening before the restream starts: yields the outputs
    (for the definition), where each records, and the receiver processes."""
    ports = {kind: free_port() for kind in ("rtmp", "srt", "rtsp", "udp", "http", "rtp")}
    files = {kind: tmp / f"{kind}.ts" for kind in ports}
    inputs = {
        "rtmp": ["-listen", "1", "-i", f"rtmp://127.0.0.1:{ports['rtmp']}/live/out"],
        "srt": ["-i", f"srt://127.0.0.1:{ports['srt']}?mode=listener"],
        "rtsp": ["-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{ports['rtsp']}/live"],
        "udp": ["-i", f"udp://127.0.0.1:{ports['udp']}"],
        "http": ["-listen", "1", "-i", f"http://127.0.0.1:{ports['http']}/in"],
        "rtp": ["-i", f"rtp://127.0.0.1:{ports['rtp']}"],
    }
    outputs = [
        {"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": f"rtmp://127.0.0.1:{ports['rtmp']}/live", "output_stream_key": "out"},
        {"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": f"srt://127.0.0.1:{ports['srt']}"},
        {"output_type": "OUTPUT_TYPE_RTSP_URL", "output_stream_url": f"rtsp://127.0.0.1:{ports['rtsp']}/live"},
        {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": f"udp://127.0.0.1:{ports['udp']}?pkt_size=1316"},
        {"output_type": "OUTPUT_TYPE_HTTP_URL", "output_stream_url": f"http://127.0.0.1:{ports['http']}/in"},
        {"output_type": "OUTPUT_TYPE_RTP_URL", "output_stream_url": f"rtp://127.0.0.1:{ports['rtp']}"},
        {"output_type": "OUTPUT_TYPE_HLS", "id": HLS_ID},
    ]  # fmt: skip
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(running(receiver(inputs[k], files[k], RECORD_S), tmp / f"{k}.log"))
            for k in ports
        ]
        # Each an output of a tee whose slaves are dropped if refused at the start.
        udp = {"srt", "udp", "rtp"}
        wait_for(
            lambda: all(bound(port, udp=kind in udp) for kind, port in ports.items()),
            timeout_s=10,
            what="every receiver listening",
        )
        yield outputs, files, processes


@pytest.mark.parametrize("source", list(INPUTS), ids=list(INPUTS))
def test_every_output_of_one_encode(tmp_path: Path, source: str) -> None:
    with contextlib.ExitStack() as stack, receivers(tmp_path) as (outputs, files, processes):
        made = INPUTS[source](tmp_path, stack)
        definition = {"input": made.spec, "transcoding": TRANSCODING, "outputs": outputs}
        with restream(definition, tmp_path, wait_running=made.after is None) as (_, events):
            if made.after is not None:
                stack.enter_context(made.after())
                wait_for(lambda: "running" in events.names(), timeout_s=20, what="running")
            for process in processes:
                process.wait(30)
            playlist = tmp_path / "media" / "r1" / HLS_ID / "index.m3u8"
            segment = wait_for(
                lambda: next(iter(sorted(playlist.parent.glob("*.ts"))), None),
                timeout_s=10,
                what="an HLS segment",
            )
            files["hls"] = segment
    for kind, path in files.items():
        assert path.exists() and path.stat().st_size > 0, f"{kind}: nothing received"
        facts = video_facts(path)
        assert (facts.codec, facts.width, facts.height) == ("h264", 256, 144), kind
        assert facts.fps == pytest.approx(25, abs=1), kind
        if facts.gop_s is not None:  # at least two key frames in what was recorded
            assert facts.gop_s == pytest.approx(1.0, abs=0.1), kind
        assert audio_facts(path) == ("aac", 44100), kind
