"""The FFmpeg command line of a restream: a pure function of its definition and placement.

Returns the arguments after the program name, never a shell string. Tested against exact
argv lists (tests/common/ffmpeg/test_argv.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.restreams.schemas import (
    SERVER_MODULE_INPUTS,
    AudioCodec,
    InputSpec,
    InputType,
    OutputSpec,
    OutputType,
    RestreamDefinition,
    TranscodingSpec,
    VideoCodec,
)

# The muxer for each kind of destination.
OUTPUT_FORMATS: dict[OutputType, str] = {
    OutputType.LOCAL_RTMP_URL: "flv",
    OutputType.OTHER_RTMP_URL: "flv",
    OutputType.RTSP_URL: "rtsp",
    OutputType.SRT_URL: "mpegts",
    OutputType.UDP_URL: "mpegts",
    OutputType.HTTP_URL: "mpegts",
    OutputType.RTP_URL: "rtp_mpegts",
}
AUDIO_ENCODERS: dict[AudioCodec, str] = {AudioCodec.AAC: "aac", AudioCodec.MP3: "libmp3lame"}
# A generated test signal is raw: with no transcode asked for, it is encoded like this.
TEST_VIDEO_ENCODER = "libx264"
TEST_VIDEO_PRESET = "veryfast"
TEST_AUDIO_SAMPLE_RATE = 48000


@dataclass(frozen=True)
class Placement:
    """Where a restream runs: the node, its address, and the U30 device it was given."""

    node_name: str
    node_address: str = "127.0.0.1"
    hw_device: int | None = None


def build_argv(
    definition: RestreamDefinition, placement: Placement, *, progress_period_s: float = 1.0
) -> list[str]:
    """FFmpeg arguments (without the program) that run `definition` on `placement`."""
    if definition.input.input_type in SERVER_MODULE_INPUTS:
        raise ValueError(f"{definition.input.input_type.value} has no FFmpeg input")
    argv = [
        "-hide_banner",
        "-nostats",
        "-y",
        "-loglevel",
        "level+warning",
        "-progress",
        "pipe:1",
        "-stats_period",
        _number(progress_period_s),
    ]
    argv += _input_args(definition.input)
    argv += _map_args(definition.input)
    argv += _video_args(definition.input, definition.transcoding)
    argv += _audio_args(definition.input, definition.transcoding)
    argv += _output_args(definition.outputs)
    return argv


def _input_args(spec: InputSpec) -> list[str]:
    if spec.input_type is InputType.GENERATE_TEST_VIDEO:
        video = (
            f"testsrc2=size={spec.resolution_width}x{spec.resolution_height}"
            f":rate={spec.encoding_rate}:duration={spec.video_duration_sec}"
        )
        audio = (
            f"sine=frequency={spec.sound_hz}:sample_rate={TEST_AUDIO_SAMPLE_RATE}"
            f":duration={spec.video_duration_sec}"
        )
        return ["-re", "-f", "lavfi", "-i", video, "-re", "-f", "lavfi", "-i", audio]
    assert spec.input_stream_url is not None  # guaranteed by InputSpec validation
    if spec.input_type is InputType.RTSP_URL:
        return ["-rtsp_transport", "tcp", "-i", spec.input_stream_url]
    return ["-i", spec.input_stream_url]


def _map_args(spec: InputSpec) -> list[str]:
    if spec.input_type is InputType.GENERATE_TEST_VIDEO:
        return ["-map", "0:v:0", "-map", "1:a:0"]
    # The first video and the first audio stream, each only if the source has one.
    return ["-map", "0:v:0?", "-map", "0:a:0?"]


def _video_args(spec: InputSpec, transcoding: TranscodingSpec | None) -> list[str]:
    codec = transcoding.video_transcoding if transcoding else None
    if codec is None:
        if spec.input_type is not InputType.GENERATE_TEST_VIDEO:
            return ["-c:v", "copy"]
        return _test_video_encode(spec)
    assert transcoding is not None
    if codec in (VideoCodec.MPSOC_VCU_H264, VideoCodec.MPSOC_VCU_HEVC):
        raise ValueError(f"{codec.value} needs a U30 placement")
    args = ["-c:v", codec.value]
    if transcoding.preset is not None:
        args += ["-preset", transcoding.preset.value]
    if transcoding.tune is not None:
        args += ["-tune", transcoding.tune.value]
    args += _rate_control(transcoding)
    if transcoding.gop is not None:
        args += ["-g", str(transcoding.gop)]
    if transcoding.force_key_frames is not None:
        args += ["-force_key_frames", _key_frame_expression(transcoding.force_key_frames)]
    if transcoding.pix_fmt is not None:
        args += ["-pix_fmt", transcoding.pix_fmt.value]
    filters = _video_filters(transcoding)
    if filters:
        args += ["-vf", ",".join(filters)]
    return args


def _test_video_encode(spec: InputSpec) -> list[str]:
    bitrate = spec.test_video_bitrate
    return [
        "-c:v",
        TEST_VIDEO_ENCODER,
        "-preset",
        TEST_VIDEO_PRESET,
        "-tune",
        "zerolatency",
        "-b:v",
        f"{bitrate}k",
        "-maxrate",
        f"{bitrate}k",
        "-bufsize",
        f"{2 * bitrate}k",
        "-g",
        str(2 * spec.encoding_rate),
        "-pix_fmt",
        "yuv420p",
    ]


def _rate_control(transcoding: TranscodingSpec) -> list[str]:
    """Live-friendly rate control: a bitrate is a cap (VBV), a crf alone is constant quality."""
    args: list[str] = []
    if transcoding.crf is not None:
        args += ["-crf", str(transcoding.crf)]
    bitrate = transcoding.output_video_bitrate
    if bitrate is not None:
        if transcoding.crf is None:
            args += ["-b:v", f"{bitrate}k"]
        args += ["-maxrate", f"{bitrate}k", "-bufsize", f"{2 * bitrate}k"]
    return args


def _video_filters(transcoding: TranscodingSpec) -> list[str]:
    filters = []
    width, height = transcoding.frame_width, transcoding.frame_height
    if width is not None or height is not None:
        # -2 keeps the aspect ratio and an even dimension, as encoders need.
        filters.append(f"scale={width or -2}:{height or -2}")
    if transcoding.filter_fps is not None:
        filters.append(f"fps={_number(transcoding.filter_fps)}")
    return filters


def _key_frame_expression(value: str) -> str:
    """A bare number means "a key frame every N seconds"; anything else goes to FFmpeg as is."""
    try:
        seconds = float(value)
    except ValueError:
        return value
    return f"expr:gte(t,n_forced*{_number(seconds)})"


def _audio_args(spec: InputSpec, transcoding: TranscodingSpec | None) -> list[str]:
    codec = transcoding.audio_transcoding if transcoding else None
    if codec is None and spec.input_type is not InputType.GENERATE_TEST_VIDEO:
        return ["-c:a", "copy"]
    args = ["-c:a", AUDIO_ENCODERS[codec or AudioCodec.AAC]]
    if transcoding is not None and transcoding.output_audio_bitrate is not None:
        args += ["-b:a", f"{transcoding.output_audio_bitrate}k"]
    if transcoding is not None and transcoding.sample_rate is not None:
        args += ["-ar", str(transcoding.sample_rate)]
    return args


def _output_args(outputs: list[OutputSpec]) -> list[str]:
    """One output directly; several through the tee muxer, so one encode feeds them all and a
    destination that fails is dropped (`onfail=ignore`) while the others keep going."""
    if len(outputs) == 1:
        output = outputs[0]
        args = ["-f", OUTPUT_FORMATS[output.output_type]]
        if output.output_type is OutputType.RTSP_URL:
            args += ["-rtsp_transport", "tcp"]
        return [*args, output.target_url()]
    slaves = []
    for output in outputs:
        options = [f"f={OUTPUT_FORMATS[output.output_type]}", "onfail=ignore"]
        if output.output_type is OutputType.RTSP_URL:
            options.append("rtsp_transport=tcp")
        slaves.append(f"[{':'.join(options)}]{output.target_url()}")
    return ["-flags", "+global_header", "-f", "tee", "|".join(slaves)]


def _number(value: float) -> str:
    """1.0 -> "1", 29.97 -> "29.97": the shortest form FFmpeg reads back as the same value."""
    return format(value, "g")
