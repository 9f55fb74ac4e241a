"""Golden argv tests: the exact FFmpeg command line for each kind of definition."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from common.definitions.restream import RestreamDefinition
from common.ffmpeg.argv import (
    RELAY_READ_OPTIONS,
    build_argv,
    ingest_url,
    input_args,
    resolve_source_codec,
)
from common.ffmpeg.outputs import hls_dir, needs_clean_end, needs_meter, segment_seconds
from common.ffmpeg.placement import Placement

HERE = Placement("node-a", "10.0.0.5")
PREAMBLE = [
    "-hide_banner", "-nostats", "-y", "-loglevel", "level+info",
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
        # FFmpeg's default for RTSP pulls: UDP, falling back to TCP by itself.
        ("INPUT_TYPE_RTSP_URL", "rtsp://cam/live.sdp", ["-i", "rtsp://cam/live.sdp"]),
        ("INPUT_TYPE_UDP_URL", "udp://239.0.0.1:1234?fifo_size=100000",
         ["-i", "udp://239.0.0.1:1234?fifo_size=100000"]),
        # Inputs that follow URLs they read may only follow network ones.
        ("INPUT_TYPE_HTTP_URL", "http://src/stream.ts",
         ["-protocol_whitelist", "http,https,tcp,tls,crypto", "-i", "http://src/stream.ts"]),
        ("INPUT_TYPE_HLS_URL", "https://src/live.m3u8",
         ["-protocol_whitelist", "http,https,tcp,tls,crypto", "-i", "https://src/live.m3u8"]),
        ("INPUT_TYPE_MPEG_DASH_URL", "https://src/live.mpd",
         ["-protocol_whitelist", "http,https,tcp,tls,crypto", "-i", "https://src/live.mpd"]),
        ("INPUT_TYPE_OTHER", "tcp://src:9000?listen=0", ["-i", "tcp://src:9000?listen=0"]),
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


LISTENING = Placement("node-a", "10.0.0.5", restream_id="62275f1bccaa650032da2b53")


@pytest.mark.parametrize(
    ("input_type", "port", "input_args"),
    [
        ("INPUT_TYPE_SRT_LISTEN", {"port": 2035, "transport": "UDP"},
         ["-i", "srt://0.0.0.0:2035?mode=listener"]),
        # The doc's own example: an SRT_URL type with a listen port means SRT listen.
        ("INPUT_TYPE_SRT_URL", {"port": 2035, "transport": "UDP"},
         ["-i", "srt://0.0.0.0:2035?mode=listener"]),
        ("INPUT_TYPE_RTMP_LISTEN", {"port": 1935},
         ["-listen", "1", "-i", "rtmp://0.0.0.0:1935/live/62275f1bccaa650032da2b53"]),
        ("INPUT_TYPE_RTSP_LISTEN", {"port": 8554, "transport": "tcp"},
         ["-rtsp_flags", "listen", "-i", "rtsp://0.0.0.0:8554/live/62275f1bccaa650032da2b53"]),
        ("INPUT_TYPE_UDP_LISTEN", {"port": 5000},
         ["-i", "udp://0.0.0.0:5000?overrun_nonfatal=1&fifo_size=1000000"]),
        ("INPUT_TYPE_HTTP_LISTEN", {"port": 8080},
         ["-listen", "1", "-i", "http://0.0.0.0:8080/live/62275f1bccaa650032da2b53"]),
    ],
)  # fmt: skip
def test_listen_inputs(input_type: str, port: dict[str, Any], input_args: list[str]) -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": input_type, "input_stream_listen_port": port},
            "outputs": [RTMP_OUT],
        }
    )
    assert build_argv(definition, LISTENING)[len(PREAMBLE) : len(PREAMBLE) + len(input_args)] == (
        input_args
    )


@pytest.mark.parametrize(
    ("input_type", "port", "url"),
    [
        ("INPUT_TYPE_SRT_LISTEN", 2035, "srt://203.0.113.7:2035"),
        ("INPUT_TYPE_RTMP_LISTEN", 1935, "rtmp://203.0.113.7:1935/live/r1"),
        ("INPUT_TYPE_RTSP_LISTEN", 8554, "rtsp://203.0.113.7:8554/live/r1"),
        ("INPUT_TYPE_UDP_LISTEN", 5000, "udp://203.0.113.7:5000"),
        ("INPUT_TYPE_HTTP_LISTEN", 8080, "http://203.0.113.7:8080/live/r1"),
    ],
)
def test_ingest_urls(input_type: str, port: int, url: str) -> None:
    spec = RestreamDefinition.model_validate(
        {
            "input": {"input_type": input_type, "input_stream_listen_port": {"port": port}},
            "outputs": [RTMP_OUT],
        }
    ).input
    assert ingest_url(spec, "203.0.113.7", "r1") == url


def test_a_stream_key_is_the_path_of_rtmp_and_the_passphrase_of_srt() -> None:
    def keyed(input_type: str, port: int) -> RestreamDefinition:
        return RestreamDefinition.model_validate(
            {
                "input": {
                    "input_type": input_type,
                    "input_stream_listen_port": {"port": port},
                    "input_stream_key": "k3y-0123456789",
                },
                "outputs": [RTMP_OUT],
            }
        )

    rtmp, srt = keyed("INPUT_TYPE_RTMP_LISTEN", 1935), keyed("INPUT_TYPE_SRT_LISTEN", 2035)
    assert "rtmp://0.0.0.0:1935/live/k3y-0123456789" in build_argv(rtmp, LISTENING)
    assert ingest_url(rtmp.input, "h", "r1") == "rtmp://h:1935/live/k3y-0123456789"
    assert "srt://0.0.0.0:2035?mode=listener&passphrase=k3y-0123456789&pbkeylen=16" in (
        build_argv(srt, LISTENING)
    )
    assert ingest_url(srt.input, "h", "r1") == "srt://h:2035?passphrase=k3y-0123456789&pbkeylen=16"


def test_relays_are_udp_loopback_mpegts() -> None:
    source = RestreamDefinition.model_validate(
        {
            "input": {
                "input_type": "INPUT_TYPE_RTMP_LISTEN",
                "input_stream_listen_port": {"port": 1935},
            },
            "outputs": [
                {"output_type": "OUTPUT_TYPE_RELAY", "output_stream_url": "udp://ignored:1"}
            ],
        }
    )
    follower = RestreamDefinition.model_validate(
        {"input": {"input_type": "INPUT_TYPE_RELAY", "input_relay_id": "r1"}, "outputs": [RTMP_OUT]}
    )
    relay = replace(LISTENING, relay_port=41000)
    assert build_argv(source, relay)[-3:] == ["-f", "mpegts", "udp://127.0.0.1:41000?pkt_size=1316"]
    reading = build_argv(follower, relay)
    at = reading.index("-i")
    assert reading[at - 2 : at + 2] == [
        "-f", "mpegts", "-i", "udp://127.0.0.1:41000?" + RELAY_READ_OPTIONS,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="relay port"):
        build_argv(follower, LISTENING)


@pytest.mark.parametrize(
    ("input_type", "tuned"),
    [
        ("INPUT_TYPE_SRT_SOFTWARE", []),
        ("INPUT_TYPE_SRT_HARDWARE", ["-fflags", "+genpts+discardcorrupt"]),
        ("INPUT_TYPE_RTMP_HARDWARE", ["-fflags", "+genpts+discardcorrupt"]),
    ],
)
def test_server_inputs_read_their_servers_stream_here(input_type: str, tuned: list[str]) -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {
                "input_type": input_type,
                "input_server_id": "a" * 24,
                "input_stream_id": "s",
            },
            "outputs": [RTMP_OUT],
        }
    )
    url = "srt://127.0.0.1:9000?streamid=receiver/studio/s&latency=200000"
    args = build_argv(definition, replace(HERE, server_url=url))
    at = args.index("-i")
    assert args[at - len(tuned) : at + 2] == [*tuned, "-i", url]
    with pytest.raises(ValueError, match="server module does not run on this node"):
        build_argv(definition, HERE)


def test_the_other_outputs() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    cases = [
        ({"output_type": "OUTPUT_TYPE_RTSP_URL", "output_stream_url": "rtsp://dst:554/live"},
         ["-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://dst:554/live"]),
        ({"output_type": "OUTPUT_TYPE_HTTP_URL", "output_stream_url": "http://dst/ingest"},
         ["-f", "mpegts", "http://dst/ingest"]),
        ({"output_type": "OUTPUT_TYPE_RTP_URL", "output_stream_url": "rtp://239.1.1.1:5004?ttl=4"},
         ["-f", "rtp_mpegts", "rtp://239.1.1.1:5004?ttl=4"]),
    ]  # fmt: skip
    for output, expected in cases:
        assert argv(source, [output])[-len(expected) :] == expected


def test_local_rtmp_goes_to_the_nodes_own_server() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/a/b"},
            "outputs": [{"output_type": "OUTPUT_TYPE_LOCAL_RTMP_URL", "output_stream_key": "k1"}],
        }
    )
    here = Placement("n", local_rtmp_url="rtmp://127.0.0.1:1935/live")
    assert build_argv(definition, here)[-3:] == ["-f", "flv", "rtmp://127.0.0.1:1935/live/k1"]
    with pytest.raises(ValueError, match="no local RTMP server"):
        build_argv(definition, HERE)


OUT_ID = "0123456789abcdef01234567"
HLS_OUT = {"id": OUT_ID, "output_type": "OUTPUT_TYPE_HLS"}


def test_hls_to_a_directory_with_segments_from_the_gop() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "encoding_rate": 25},
            "transcoding": {"video_transcoding": "libx264", "gop": 50},
            "outputs": [HLS_OUT],
        }
    )
    here = Placement("n", restream_id="r1", media_dir="/srv/media")
    assert segment_seconds(definition) == 2.0
    assert build_argv(definition, here)[-13:] == [
        "-f", "hls",
        "-hls_time", "2",
        "-hls_list_size", "6",
        "-hls_flags", "delete_segments+independent_segments+program_date_time",
        "-hls_delete_threshold", "2",
        "-hls_segment_filename", "/srv/media/r1/0123456789abcdef01234567/segment_%06d.ts",
        "/srv/media/r1/0123456789abcdef01234567/index.m3u8",
    ]  # fmt: skip


def test_hls_without_a_gop_forces_key_frames_at_segment_boundaries() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    result = argv(source, [HLS_OUT], {"video_transcoding": "libx264"})
    assert result[result.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*2)"
    assert result[result.index("-hls_time") + 1] == "2"


def test_tee_escapes_slave_options() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
    result = argv(source, [RTMP_OUT, HLS_OUT], {"video_transcoding": "libx264", "gop": 60})
    assert result[-1] == (
        "[f=flv:onfail=ignore]rtmp://x/live|"
        "[f=hls:onfail=ignore:hls_time=2:hls_list_size=6"
        ":hls_flags=delete_segments+independent_segments+program_date_time"
        ":hls_delete_threshold=2"
        ":hls_segment_filename=/tmp/streamfleet-media/restream/0123456789abcdef01234567/segment_%06d.ts]"
        "/tmp/streamfleet-media/restream/0123456789abcdef01234567/index.m3u8"
    )


# -- Alveo U30, after the Xilinx Video SDK's documented examples -----------------------------

CARD0 = Placement("vt1", hw_device=0)
CARD1 = Placement("vt1", hw_device=1)


def u30(input: dict[str, Any], transcoding: dict[str, Any], placement: Placement) -> list[str]:
    definition = RestreamDefinition.model_validate(
        {"input": input, "transcoding": transcoding, "outputs": [RTMP_OUT]}
    )
    return build_argv(definition, placement)[len(PREAMBLE) :]


H264_PULL = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}


def test_u30_transcode_h264_to_hevc() -> None:
    # SDK: ffmpeg -c:v mpsoc_vcu_h264 -i infile.mp4 -c:v mpsoc_vcu_hevc -b:v 1000K ...
    assert u30(H264_PULL, {"video_transcoding": "mpsoc_vcu_hevc", "output_video_bitrate": 1000}, CARD0) == [
        "-xlnx_hwdev", "0",
        "-c:v", "mpsoc_vcu_h264", "-i", "rtmp://src/live/k",
        "-map", "0:v:0", "-map", "0:a:0?",
        "-c:v", "mpsoc_vcu_hevc", "-b:v", "1000K",
        "-c:a", "copy",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


def test_u30_device_chosen_by_the_placement() -> None:
    # SDK: ffmpeg -xlnx_hwdev 1 -c:v mpsoc_vcu_h264 -i INPUT2.h264 ... -c:v mpsoc_vcu_hevc
    result = u30(H264_PULL, {"video_transcoding": "mpsoc_vcu_hevc"}, CARD1)
    assert result[:5] == ["-xlnx_hwdev", "1", "-c:v", "mpsoc_vcu_h264", "-i"]


def test_u30_scaling_on_the_card() -> None:
    # SDK: -filter_complex "multiscale_xma=outputs=N: out_1_width=1280: out_1_height=720: ..."
    result = u30(
        H264_PULL,
        {"video_transcoding": "mpsoc_vcu_h264", "frame_width": 1280, "frame_height": 720,
         "gop": 60, "slices": 2, "cores": 1},
        CARD0,
    )  # fmt: skip
    assert result[6:] == [
        "-filter_complex",
        "multiscale_xma=outputs=1:out_1_width=1280:out_1_height=720:out_1_rate=full[v]",
        "-map", "[v]", "-map", "0:a:0?",
        "-c:v", "mpsoc_vcu_h264", "-g", "60", "-slices", "2", "-cores", "1",
        "-c:a", "copy",
        "-f", "flv", "rtmp://x/live",
    ]  # fmt: skip


def test_u30_4k_h264_forces_four_slices() -> None:
    # SDK: ffmpeg -c:v mpsoc_vcu_hevc -i <INPUT> -b:v 20M -c:v mpsoc_vcu_h264 -slices 4 ...
    hevc_pull = {**H264_PULL, "input_video_codec": "hevc"}
    result = u30(
        hevc_pull,
        {"video_transcoding": "mpsoc_vcu_h264", "output_video_bitrate": 20000,
         "frame_width": 3840, "frame_height": 2160, "slices": 1},
        CARD0,
    )  # fmt: skip
    assert result[2:6] == ["-c:v", "mpsoc_vcu_hevc", "-i", "rtmp://src/live/k"]
    assert result[result.index("-slices") + 1] == "4"
    assert result[result.index("-b:v") + 1] == "20000K"
    hevc_4k = u30(hevc_pull, {"video_transcoding": "mpsoc_vcu_hevc", "frame_width": 3840,
                              "frame_height": 2160}, CARD0)  # fmt: skip
    assert "-slices" not in hevc_4k  # HEVC does not need it


def test_u30_from_a_raw_test_signal_uploads_frames() -> None:
    result = u30(
        {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "encoding_rate": 60},
        {"video_transcoding": "mpsoc_vcu_h264", "frame_width": 1280, "frame_height": 720,
         "filter_fps": 30},
        CARD0,
    )  # fmt: skip
    assert result[:3] == ["-xlnx_hwdev", "0", "-re"]  # no hardware decoder for raw frames
    assert "mpsoc_vcu_h264" not in result[: result.index("-map")]
    assert result[result.index("-vf") + 1] == "scale=1280:720"
    assert result[result.index("-r") + 1] == "30"


def test_u30_needs_a_device() -> None:
    definition = RestreamDefinition.model_validate(
        {"input": H264_PULL, "transcoding": {"video_transcoding": "mpsoc_vcu_h264"},
         "outputs": [RTMP_OUT]}
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs a U30 device"):
        build_argv(definition, HERE)


def test_hls_and_dash_share_one_encode_with_key_frames_at_segments() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"},
            "transcoding": {"video_transcoding": "libx264"},
            "outputs": [
                {"output_type": "OUTPUT_TYPE_HLS", "id": "a" * 24},
                {"output_type": "OUTPUT_TYPE_DASH", "id": "d" * 24},
            ],
        }
    )
    args = build_argv(definition, LISTENING)
    assert "expr:gte(t,n_forced*2)" in args
    slaves = args[-1].split("|")
    media = "/tmp/streamfleet-media/62275f1bccaa650032da2b53"
    assert slaves[1] == (
        "[f=dash:onfail=ignore:seg_duration=2:window_size=6:extra_window_size=2:"
        f"remove_at_exit=1:use_template=1:use_timeline=1]{media}/{'d' * 24}/manifest.mpd"
    )
    assert slaves[0].endswith(f"]{media}/{'a' * 24}/index.m3u8")


def test_the_nodes_own_rtsp_server_takes_a_path_and_the_key() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"},
            "outputs": [{"output_type": "OUTPUT_TYPE_LOCAL_RTSP_URL", "output_stream_key": "pp1"}],
        }
    )
    own = "rtsp://streamfleet:pw@127.0.0.1:8555/live"
    assert build_argv(definition, replace(HERE, local_rtsp_url=own))[-5:] == [
        "-f", "rtsp", "-rtsp_transport", "udp", own + "/pp1",
    ]  # fmt: skip
    # Another server of the operator's, elsewhere: TCP.
    theirs = replace(HERE, local_rtsp_url="rtsp://10.0.0.9:8554/live")
    assert build_argv(definition, theirs)[-2:] == ["tcp", "rtsp://10.0.0.9:8554/live/pp1"]
    with pytest.raises(ValueError, match="no local RTSP server"):
        build_argv(definition, HERE)


def test_audio_sync_resamples_to_the_timestamps() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"}
    args = argv(source, [RTMP_OUT], {"audio_sync": True})
    at = args.index("-c:a")
    assert args[at : at + 4] == ["-c:a", "aac", "-af", "aresample=async=1000"]


def test_copy_when_the_source_already_has_the_codec() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"},
            "transcoding": {
                "video_transcoding": "libx265",
                "preset": "ultrafast",
                "copy_when_source_is": "hevc",
                "audio_sync": True,
            },
            "outputs": [RTMP_OUT],
        }
    )
    copied = resolve_source_codec(definition, "hevc")
    assert copied.transcoding is not None and copied.transcoding.audio_sync is True
    assert copied.transcoding.video_transcoding is None and copied.transcoding.preset is None

    def video(args: list[str]) -> list[str]:
        at = args.index("-c:v")
        return args[at : at + 4]

    assert video(build_argv(copied, HERE))[:2] == ["-c:v", "copy"]
    for other in ("h264", None):  # another codec, or the source could not be probed
        encoded = build_argv(resolve_source_codec(definition, other), HERE)
        assert video(encoded) == ["-c:v", "libx265", "-preset", "ultrafast"]
    assert resolve_source_codec(copied, "h264") is copied


def test_input_args_open_the_input_as_the_restream_does() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_HLS_URL", "input_stream_url": "https://s/a.m3u8"},
            "outputs": [RTMP_OUT],
        }
    )
    assert input_args(definition, HERE) == [
        "-protocol_whitelist", "http,https,tcp,tls,crypto", "-i", "https://s/a.m3u8",
    ]  # fmt: skip


def test_restreams_whose_size_ffmpeg_does_not_report_send_a_copy_to_a_meter() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"}
    hls = {"output_type": "OUTPUT_TYPE_HLS", "id": "a" * 24}
    relay = {"output_type": "OUTPUT_TYPE_RELAY"}

    def defined(*outputs: dict[str, Any]) -> RestreamDefinition:
        return RestreamDefinition.model_validate({"input": source, "outputs": list(outputs)})

    assert [
        needs_meter(defined(RTMP_OUT)),
        needs_meter(defined(hls)),
        needs_meter(defined(RTMP_OUT, RTMP_OUT)),
        needs_meter(defined(relay, hls)),  # the relay is counted already
    ] == [False, True, True, False]
    metered = build_argv(defined(hls), replace(HERE, meter_port=41234))
    assert metered[-5:-1] == ["-flags", "+global_header", "-f", "tee"]
    slaves = metered[-1].split("|")
    assert slaves[-1] == "[f=mpegts:onfail=ignore]udp://127.0.0.1:41234?pkt_size=1316"
    assert slaves[0].startswith("[f=hls:onfail=ignore:")


def test_a_stop_lets_ffmpeg_finish_only_outputs_that_have_something_to_finish() -> None:
    source = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/l/k"}
    udp = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://10.0.0.9:5000"}
    rtp = {"output_type": "OUTPUT_TYPE_RTP_URL", "output_stream_url": "rtp://10.0.0.9:5002"}
    relay = {"output_type": "OUTPUT_TYPE_RELAY"}
    hls = {"output_type": "OUTPUT_TYPE_HLS", "id": "a" * 24}

    def defined(*outputs: dict[str, Any]) -> RestreamDefinition:
        return RestreamDefinition.model_validate({"input": source, "outputs": list(outputs)})

    assert [
        needs_clean_end(defined(udp)),
        needs_clean_end(defined(udp, rtp, relay)),
        needs_clean_end(defined(RTMP_OUT)),  # an unpublish to send
        needs_clean_end(defined(udp, hls)),  # a playlist to end
    ] == [False, False, True, True]


# -- what FFmpeg reads back from the tee muxer's argument ------------------------------------


def av_get_token(text: str, terminators: str) -> tuple[str, str]:
    """FFmpeg's `av_get_token` (libavutil/avstring.c), line for line: the token up to one of
    `terminators`, and the rest. A backslash escapes the next character, a quote starts a run
    read as is, leading whitespace is skipped and trailing whitespace dropped."""
    whitespace = " \n\t\r"
    i = 0
    while i < len(text) and text[i] in whitespace:
        i += 1
    out: list[str] = []
    end = 0
    while i < len(text) and text[i] not in terminators:
        char = text[i]
        i += 1
        if char == "\\" and i < len(text):
            out.append(text[i])
            i += 1
            end = len(out)
        elif char == "'":
            while i < len(text) and text[i] != "'":
                out.append(text[i])
                i += 1
            if i < len(text):
                i += 1
                end = len(out)
        else:
            out.append(char)
    while len(out) > end and out[-1] in whitespace:
        out.pop()
    return "".join(out), text[i:]


def tee_slaves(argument: str) -> list[tuple[dict[str, str], str]]:
    """The slaves FFmpeg's tee muxer makes of its argument: (options, target) each
    (tee.c `tee_write_header`, tee_common.c `ff_tee_parse_slave_options`)."""
    slaves = []
    while argument:
        slave, argument = av_get_token(argument, "|")
        argument = argument[1:] if argument.startswith("|") else argument
        options: dict[str, str] = {}
        if slave.startswith("["):
            rest = slave[1:]
            while not rest.startswith("]"):
                name, _, rest = rest.partition("=")
                options[name], rest = av_get_token(rest, ":]")
                rest = rest[1:] if rest.startswith(":") else rest
            slave = rest[1:]
        slaves.append((options, slave))
    return slaves


@pytest.mark.parametrize(
    "url",
    [
        "udp://127.0.0.1:5000?a='",
        "udp://127.0.0.1:5000?a=\\",
        "udp://127.0.0.1:5000?a='b'c\\'",
        "udp://127.0.0.1:5000?x=[a]:b",
    ],
)
def test_every_slave_reaches_ffmpeg_whatever_its_url_holds(url: str) -> None:
    """A quote or a backslash in one URL used to swallow the outputs after it (and the
    meter): FFmpeg must read back exactly the URLs and options that were given."""
    outputs = [
        {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": url},
        {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:6000"},
        HLS_OUT,
    ]
    definition = RestreamDefinition.model_validate(
        {"input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, "outputs": outputs}
    )
    here = Placement("n", restream_id="r1", media_dir="/srv/me'dia:x", meter_port=7000)
    slaves = tee_slaves(build_argv(definition, here)[-1])
    assert [target for _, target in slaves] == [
        url,
        "udp://127.0.0.1:6000",
        f"/srv/me'dia:x/r1/{OUT_ID}/index.m3u8",
        "udp://127.0.0.1:7000?pkt_size=1316",
    ]
    assert slaves[2][0]["hls_segment_filename"] == f"/srv/me'dia:x/r1/{OUT_ID}/segment_%06d.ts"
    assert [options["f"] for options, _ in slaves] == ["mpegts", "mpegts", "hls", "mpegts"]


@pytest.mark.parametrize("output_id", ["..", "../../victim", "a/b", "", "x" * 65])
def test_media_directories_are_plain_names_under_the_media_dir(output_id: str) -> None:
    """A definition that reaches the worker with an unsafe id (stored before ids were
    checked) builds no command: the id would name a directory outside the media dir."""
    definition = RestreamDefinition.model_validate(
        {"input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, "outputs": [HLS_OUT]}
    )
    definition.outputs[0].id = output_id or None  # past validation, as a stored row could be
    if not output_id:
        assert hls_dir(HERE, definition.outputs[0]).endswith("/restream/hls")
        return
    with pytest.raises(ValueError, match="cannot name a directory"):
        build_argv(definition, HERE)
    with pytest.raises(ValueError, match="cannot name a directory"):
        hls_dir(replace(HERE, restream_id="../x"), definition.outputs[0].model_copy())
