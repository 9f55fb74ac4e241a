"""Golden argv tests: the exact FFmpeg command line for each kind of definition."""

from __future__ import annotations

from typing import Any

import pytest

from common.ffmpeg.argv import Placement, build_argv
from common.restreams.schemas import RestreamDefinition

HERE = Placement("node-a", "10.0.0.5")
PREAMBLE = [
    "-hide_banner", "-nostats", "-y", "-loglevel", "level+warning",
    "-progress", "pipe:1", "-stats_period", "1",
]  # fmt: skip
COPY = ["-map", "0:v:0?", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "copy"]
RTMP_OUT = {"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": "rtmp://x/live"}


def argv(
    input: dict[str, Any], outputs: list[dict[str, Any]], transcoding: Any = None
) -> list[str]:
    definition = RestreamDefinition.model_validate(
        {"input": input, "transcoding": transcoding, "outputs": outputs}
    )
    return build_argv(definition, HERE)


def test_test_video_defaults_follow_the_callaba_doc() -> None:
    assert argv({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, [RTMP_OUT]) == [
        *PREAMBLE,
        "-re", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=24:duration=3600",
        "-re", "-f", "lavfi", "-i", "sine=frequency=216:sample_rate=48000:duration=3600",
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "6000k", "-maxrate", "6000k", "-bufsize", "12000k", "-g", "48",
        "-pix_fmt", "yuv420p",
        "-c:a", "aac",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


def test_test_video_parameters_as_strings() -> None:
    test_input = {
        "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
        "encoding_rate": "10", "sound_hz": "440", "resolution_width": "160",
        "resolution_height": "90", "video_duration_sec": "60", "test_video_bitrate": "300",
    }  # fmt: skip
    assert argv(test_input, [RTMP_OUT])[len(PREAMBLE) :][:10] == [
        "-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=60",
        "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
    ]  # fmt: skip
    assert "300k" in argv(test_input, [RTMP_OUT])


def test_test_video_with_transcoding_encodes_once_with_the_transcoding() -> None:
    result = argv(
        {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "encoding_rate": 25},
        [RTMP_OUT],
        {
            "video_transcoding": "libx264", "output_video_bitrate": "800",
            "frame_width": 640, "frame_height": 360,
            "audio_trancoding": "aac", "output_audio_bitrate": 64,
        },
    )  # fmt: skip
    assert result[len(PREAMBLE) + 10 :] == [
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-b:v", "800k", "-maxrate", "800k", "-bufsize", "1600k",
        "-vf", "scale=640:360",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("input_type", "url", "input_args"),
    [
        ("INPUT_TYPE_SRT_URL", "srt://1.2.3.4:8000?rcvbuf=12036704",
         ["-i", "srt://1.2.3.4:8000?rcvbuf=12036704"]),
        ("INPUT_TYPE_RTMP_URL", "rtmp://src/live/k", ["-i", "rtmp://src/live/k"]),
        ("INPUT_TYPE_RTSP_URL", "rtsp://cam/live.sdp",
         ["-rtsp_transport", "tcp", "-i", "rtsp://cam/live.sdp"]),
        ("INPUT_TYPE_UDP_URL", "udp://239.0.0.1:1234?fifo_size=100000",
         ["-i", "udp://239.0.0.1:1234?fifo_size=100000"]),
        ("INPUT_TYPE_HTTP_URL", "http://src/stream.ts", ["-i", "http://src/stream.ts"]),
        ("INPUT_TYPE_HLS_URL", "https://src/live.m3u8", ["-i", "https://src/live.m3u8"]),
    ],
)  # fmt: skip
def test_url_inputs_pass_their_parameters_through(
    input_type: str, url: str, input_args: list[str]
) -> None:
    out = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://10.0.0.9:5000"}
    assert argv({"input_type": input_type, "input_stream_url": url}, [out]) == [
        *PREAMBLE, *input_args, *COPY, "-f", "mpegts", "udp://10.0.0.9:5000",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("output", "output_args"),
    [
        ({**RTMP_OUT, "output_stream_key": "AWESOME_KEY"},
         ["-f", "flv", "rtmp://x/live/AWESOME_KEY"]),
        ({"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
          "output_stream_url": "rtmp://a.rtmp.youtube.com/live2/", "output_stream_key": "K"},
         ["-f", "flv", "rtmp://a.rtmp.youtube.com/live2/K"]),
        ({"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": "srt://1.2.3.4:2035?sndbuf=1"},
         ["-f", "mpegts", "srt://1.2.3.4:2035?sndbuf=1"]),
        ({"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://1.2.3.4:5000"},
         ["-f", "mpegts", "udp://1.2.3.4:5000"]),
    ],
)  # fmt: skip
def test_outputs(output: dict[str, Any], output_args: list[str]) -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    assert argv(source, [output])[-len(output_args) :] == output_args


def test_full_software_transcode() -> None:
    source = {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://src:9000"}
    transcoding = {
        "video_transcoding": "libx265", "output_video_bitrate": 4000, "gop": "50",
        "force_key_frames": 2, "frame_width": "1280", "preset": "medium", "tune": "zerolatency",
        "crf": "23", "pix_fmt": "yuv420p", "filter_fps": 25,
        "audio_transcoding": "mp3", "output_audio_bitrate": "128", "sample_rate": "44100",
    }  # fmt: skip
    assert argv(source, [RTMP_OUT], transcoding)[len(PREAMBLE) + 2 :] == [
        "-map", "0:v:0?", "-map", "0:a:0?",
        "-c:v", "libx265", "-preset", "medium", "-tune", "zerolatency",
        "-crf", "23", "-maxrate", "4000k", "-bufsize", "8000k",
        "-g", "50", "-force_key_frames", "expr:gte(t,n_forced*2)", "-pix_fmt", "yuv420p",
        "-vf", "scale=1280:-2,fps=25",
        "-c:a", "libmp3lame", "-b:a", "128k", "-ar", "44100",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


def test_disabled_means_copy_and_unset() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    transcoding = {
        "video_transcoding": "Disabled", "preset": "Disabled", "tune": "Disabled",
        "pix_fmt": "Disable", "audio_trancoding": "aac", "crf": "",
    }  # fmt: skip
    assert argv(source, [RTMP_OUT], transcoding)[len(PREAMBLE) + 2 :] == [
        "-map", "0:v:0?", "-map", "0:a:0?", "-c:v", "copy", "-c:a", "aac",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


def test_force_key_frames_expression_is_kept() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    transcoding = {"video_transcoding": "libx264", "force_key_frames": "expr:gte(t,n_forced*4)"}
    result = argv(source, [RTMP_OUT], transcoding)
    assert result[result.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*4)"


def test_several_outputs_share_one_encode_through_tee() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    outputs = [
        {**RTMP_OUT, "output_stream_key": "a"},
        {"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": "srt://h:1"},
    ]
    assert argv(source, outputs)[-5:] == [
        "-flags", "+global_header", "-f", "tee",
        "[f=flv:onfail=ignore]rtmp://x/live/a|[f=mpegts:onfail=ignore]srt://h:1",
    ]  # fmt: skip


def test_progress_period_is_configurable() -> None:
    definition = RestreamDefinition.model_validate(
        {"input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, "outputs": [RTMP_OUT]}
    )
    result = build_argv(definition, HERE, progress_period_s=0.5)
    assert result[result.index("-stats_period") + 1] == "0.5"
