"""The kinds of things a restream is made of: input and output types, codecs, presets, and
what each kind may use (URL schemes, transports), with the limits a definition keeps to."""

from __future__ import annotations

from enum import StrEnum


class InputType(StrEnum):
    SRT_SOFTWARE = "INPUT_TYPE_SRT_SOFTWARE"
    SRT_HARDWARE = "INPUT_TYPE_SRT_HARDWARE"
    RTMP_SOFTWARE = "INPUT_TYPE_RTMP_SOFTWARE"
    RTMP_HARDWARE = "INPUT_TYPE_RTMP_HARDWARE"
    SRT_LISTEN = "INPUT_TYPE_SRT_LISTEN"
    RTMP_LISTEN = "INPUT_TYPE_RTMP_LISTEN"
    RTSP_LISTEN = "INPUT_TYPE_RTSP_LISTEN"
    UDP_LISTEN = "INPUT_TYPE_UDP_LISTEN"
    HTTP_LISTEN = "INPUT_TYPE_HTTP_LISTEN"
    SRT_URL = "INPUT_TYPE_SRT_URL"
    RTMP_URL = "INPUT_TYPE_RTMP_URL"
    RTSP_URL = "INPUT_TYPE_RTSP_URL"
    UDP_URL = "INPUT_TYPE_UDP_URL"
    HTTP_URL = "INPUT_TYPE_HTTP_URL"
    HLS_URL = "INPUT_TYPE_HLS_URL"
    MPEG_DASH_URL = "INPUT_TYPE_MPEG_DASH_URL"
    OTHER = "INPUT_TYPE_OTHER"
    GENERATE_TEST_VIDEO = "INPUT_TYPE_GENERATE_TEST_VIDEO"
    RELAY = "INPUT_TYPE_RELAY"  # streamfleet's own: another restream's relay on the same node


class OutputType(StrEnum):
    LOCAL_RTMP_URL = "OUTPUT_TYPE_LOCAL_RTMP_URL"
    OTHER_RTMP_URL = "OUTPUT_TYPE_OTHER_RTMP_URL"
    RTSP_URL = "OUTPUT_TYPE_RTSP_URL"
    SRT_URL = "OUTPUT_TYPE_SRT_URL"
    UDP_URL = "OUTPUT_TYPE_UDP_URL"
    HTTP_URL = "OUTPUT_TYPE_HTTP_URL"
    RTP_URL = "OUTPUT_TYPE_RTP_URL"
    HLS = "OUTPUT_TYPE_HLS"  # streamfleet's own: HLS segments written on the node
    DASH = "OUTPUT_TYPE_DASH"  # streamfleet's own: MPEG-DASH segments written on the node
    LOCAL_RTSP_URL = "OUTPUT_TYPE_LOCAL_RTSP_URL"  # streamfleet's own: the node's RTSP server
    RELAY = "OUTPUT_TYPE_RELAY"  # streamfleet's own: the node's relay, for INPUT_TYPE_RELAY


class VideoCodec(StrEnum):
    LIBX264 = "libx264"
    LIBX265 = "libx265"
    MPSOC_VCU_H264 = "mpsoc_vcu_h264"
    MPSOC_VCU_HEVC = "mpsoc_vcu_hevc"


class AudioCodec(StrEnum):
    AAC = "aac"
    MP3 = "mp3"


class Preset(StrEnum):
    ULTRAFAST = "ultrafast"
    SUPERFAST = "superfast"
    VERYFAST = "veryfast"
    FASTER = "faster"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    SLOWER = "slower"
    VERYSLOW = "veryslow"


class Tune(StrEnum):
    FILM = "film"
    ANIMATION = "animation"
    GRAIN = "grain"
    STILLIMAGE = "stillimage"
    FASTDECODE = "fastdecode"
    ZEROLATENCY = "zerolatency"


class PixFmt(StrEnum):
    YUV420P = "yuv420p"
    YUVJ420P = "yuvj420p"
    YUV422P = "yuv422p"
    YUVJ422P = "yuvj422p"
    YUV444P = "yuv444p"
    YUVJ444P = "yuvj444p"
    NV12 = "nv12"
    NV16 = "nv16"
    NV21 = "nv21"
    YUV420P10LE = "yuv420p10le"
    YUV444P10LE = "yuv444p10le"
    NV20LE = "nv20le"


# Types that read a stream of one of the farm's server modules (`input_server_id`).
SERVER_MODULE_INPUTS = frozenset(
    {
        InputType.SRT_SOFTWARE,
        InputType.SRT_HARDWARE,
        InputType.RTMP_SOFTWARE,
        InputType.RTMP_HARDWARE,
    }
)
# Those from hardware encoders: read with timestamps made where missing (see ffmpeg.argv).
HARDWARE_INPUTS = frozenset({InputType.SRT_HARDWARE, InputType.RTMP_HARDWARE})
# The transport each listen type must use (the Callaba doc: UDP for SRT, WebRTC and RTP,
# TCP for the rest; a UDP listener is UDP, whatever the doc's "rest" says).
LISTEN_INPUTS: dict[InputType, str] = {
    InputType.SRT_LISTEN: "UDP",
    InputType.RTMP_LISTEN: "TCP",
    InputType.RTSP_LISTEN: "TCP",
    InputType.UDP_LISTEN: "UDP",
    InputType.HTTP_LISTEN: "TCP",
}
# Listen inputs that can refuse a publisher without the right stream key.
KEYED_INPUTS = frozenset({InputType.SRT_LISTEN, InputType.RTMP_LISTEN, InputType.RTSP_LISTEN})

_NETWORK_SCHEMES = frozenset(
    {"srt", "rtmp", "rtmps", "rtsp", "rtsps", "udp", "rtp", "http", "https", "tcp"}
)
# The URL schemes each type may use. Local files and FFmpeg's meta-protocols (file:, concat:,
# subfile:, pipe:, ...) are never among them: a restream must not read or write the node's disk.
INPUT_SCHEMES: dict[InputType, frozenset[str]] = {
    InputType.SRT_URL: frozenset({"srt"}),
    InputType.RTMP_URL: frozenset({"rtmp", "rtmps"}),
    InputType.RTSP_URL: frozenset({"rtsp", "rtsps"}),
    InputType.UDP_URL: frozenset({"udp", "rtp"}),
    InputType.HTTP_URL: frozenset({"http", "https"}),
    InputType.HLS_URL: frozenset({"http", "https"}),
    InputType.MPEG_DASH_URL: frozenset({"http", "https"}),
    InputType.OTHER: _NETWORK_SCHEMES | {"file"},  # file only if the operator allows it
}
LOCAL_FILE_SCHEMES = frozenset({"file"})
# What a restream with continuity (a backup input, a slate) opens in a stage of its own.
CONTINUITY_INPUTS = frozenset({*INPUT_SCHEMES, InputType.GENERATE_TEST_VIDEO}) - {InputType.OTHER}
OUTPUT_SCHEMES: dict[OutputType, frozenset[str]] = {
    OutputType.LOCAL_RTMP_URL: frozenset({"rtmp"}),
    OutputType.OTHER_RTMP_URL: frozenset({"rtmp", "rtmps"}),
    OutputType.RTSP_URL: frozenset({"rtsp", "rtsps"}),
    OutputType.SRT_URL: frozenset({"srt"}),
    OutputType.UDP_URL: frozenset({"udp"}),
    OutputType.HTTP_URL: frozenset({"http", "https"}),
    OutputType.RTP_URL: frozenset({"rtp"}),
    OutputType.LOCAL_RTSP_URL: frozenset({"rtsp"}),
}
# Outputs whose place the farm decides: their URL is optional (ignored for HLS, DASH and
# relays; for the node's own servers, a path on them).
FARM_OUTPUTS = frozenset(
    {
        OutputType.LOCAL_RTMP_URL,
        OutputType.LOCAL_RTSP_URL,
        OutputType.HLS,
        OutputType.DASH,
        OutputType.RELAY,
    }
)
# Outputs written as files on the node (served over HTTP by its worker).
FILE_OUTPUTS = frozenset({OutputType.HLS, OutputType.DASH})
MAX_KEY_FRAME_INTERVAL_S = 3600  # force_key_frames given as a number of seconds
# Longest URL taken. An argv element has no limit of its own, but all of them together do
# (ARG_MAX): a 140,000-character URL was stored, then retried forever with "Argument list too
# long".
MAX_URL_LENGTH = 4096
MAX_LABEL_LENGTH = 200  # free text kept for clients (module and entity names, stream ids)
