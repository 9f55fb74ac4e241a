"""The FFmpeg command line of a restream: a pure function of its definition and placement.

Returns the arguments after the program name, never a shell string. Tested against exact
argv lists (tests/common/ffmpeg/test_argv.py), including the Xilinx Video SDK's own examples
for the Alveo U30 (`mpsoc_vcu_*` codecs, `-xlnx_hwdev`, `multiscale_xma`).
"""

from __future__ import annotations

from common.definitions.kinds import (
    HARDWARE_INPUTS,
    LISTEN_INPUTS,
    SERVER_MODULE_INPUTS,
    AudioCodec,
    InputType,
    VideoCodec,
)
from common.definitions.restream import InputSpec, RestreamDefinition, TranscodingSpec
from common.ffmpeg.outputs import (
    DEFAULT_SEGMENT_S,
    GENERATE,
    has_segments,
    number,
    output_args,
)
from common.ffmpeg.placement import Placement

# Reading a relay: a loss-tolerant, deep enough buffer for a node under load.
RELAY_READ_OPTIONS = "overrun_nonfatal=1&fifo_size=50000&buffer_size=8388608"
AUDIO_ENCODERS: dict[AudioCodec, str] = {AudioCodec.AAC: "aac", AudioCodec.MP3: "libmp3lame"}
U30_CODECS = frozenset({VideoCodec.MPSOC_VCU_H264, VideoCodec.MPSOC_VCU_HEVC})
U30_DECODERS = {"h264": "mpsoc_vcu_h264", "hevc": "mpsoc_vcu_hevc"}
# A generated test signal is raw: with no transcode asked for, it is encoded like this.
TEST_VIDEO_ENCODER = "libx264"
TEST_VIDEO_PRESET = "veryfast"
TEST_AUDIO_SAMPLE_RATE = 48000
# Inputs that may follow URLs found in what they read (playlists, manifests): only the
# network protocols of their kind, never local files.
NESTED_PROTOCOLS = {
    InputType.HTTP_URL: "http,https,tcp,tls,crypto",
    InputType.HLS_URL: "http,https,tcp,tls,crypto",
    InputType.MPEG_DASH_URL: "http,https,tcp,tls,crypto",
}
FOUR_K_PIXELS = 3840 * 2160


def resolve_source_codec(
    definition: RestreamDefinition, source_codec: str | None
) -> RestreamDefinition:
    """The definition to run once the source's video codec is known: with
    `copy_when_source_is` matching it, the video is copied instead of encoded."""
    transcoding = definition.transcoding
    if transcoding is None or transcoding.copy_when_source_is is None:
        return definition
    if source_codec != transcoding.copy_when_source_is:
        return definition
    video_fields = {
        "video_transcoding", "output_video_bitrate", "force_key_frames", "gop", "frame_width",
        "frame_height", "preset", "tune", "crf", "pix_fmt", "filter_fps", "slices", "cores",
    }  # fmt: skip
    kept = transcoding.model_dump(exclude=video_fields, exclude_none=True)
    return definition.model_copy(update={"transcoding": TranscodingSpec.model_validate(kept)})


def build_argv(
    definition: RestreamDefinition, placement: Placement, *, progress_period_s: float = 1.0
) -> list[str]:
    """FFmpeg arguments (without the program) that run `definition` on `placement`."""
    spec = definition.input
    transcoding = definition.transcoding
    codec = transcoding.video_transcoding if transcoding else None
    on_card = codec in U30_CODECS
    if on_card and placement.hw_device is None:
        raise ValueError(f"{codec} needs a U30 device from the placement")
    argv = [
        "-hide_banner",
        "-nostats",
        "-y",
        "-loglevel",
        "level+info",  # for the output header; info lines are signals, not errors
        "-progress",
        "pipe:1",
        "-stats_period",
        number(progress_period_s),
    ]
    if on_card:
        argv += ["-xlnx_hwdev", str(placement.hw_device)]
    argv += _input_args(spec, placement, decode_on_card=on_card)
    if on_card:
        assert transcoding is not None
        argv += _u30_video_args(spec, transcoding)
    else:
        argv += _map_args(spec)
        argv += _video_args(definition, transcoding)
    argv += _audio_args(spec, transcoding)
    argv += output_args(definition, placement)
    return argv


HARDWARE_INPUT_FLAGS = ["-fflags", "+genpts+discardcorrupt"]


# -- input ---------------------------------------------------------------------------------


def input_args(definition: RestreamDefinition, placement: Placement) -> list[str]:
    """How the restream opens its input (for probing it the same way)."""
    return _input_args(definition.input, placement, decode_on_card=False)


def open_args(spec: InputSpec, placement: Placement) -> list[str]:
    """How an input is opened (decoded on the CPU), for a stage of its own."""
    return _input_args(spec, placement, decode_on_card=False)


def _input_args(spec: InputSpec, placement: Placement, *, decode_on_card: bool) -> list[str]:
    if spec.input_type is GENERATE:
        video = (
            f"testsrc2=size={spec.resolution_width}x{spec.resolution_height}"
            f":rate={spec.encoding_rate}:duration={spec.video_duration_sec}"
        )
        audio = (
            f"sine=frequency={spec.sound_hz}:sample_rate={TEST_AUDIO_SAMPLE_RATE}"
            f":duration={spec.video_duration_sec}"
        )
        return ["-re", "-f", "lavfi", "-i", video, "-re", "-f", "lavfi", "-i", audio]
    args = []
    if decode_on_card:  # the Video SDK decodes on the card with its codec before -i
        args += ["-c:v", U30_DECODERS[spec.input_video_codec or "h264"]]
    if spec.input_type in LISTEN_INPUTS:
        return args + _listen_args(spec, placement)
    if spec.input_type in SERVER_MODULE_INPUTS:
        if placement.server_url is None:
            raise ValueError("its server module does not run on this node")
        # A hardware encoder's stream: timestamps made where it leaves them out, corrupt
        # packets dropped rather than decoded into the output.
        tuned = HARDWARE_INPUT_FLAGS if spec.input_type in HARDWARE_INPUTS else []
        return [*args, *tuned, "-i", placement.server_url]
    if spec.input_type is InputType.RELAY:
        if placement.relay_port is None:
            raise ValueError("INPUT_TYPE_RELAY needs the node's relay port")
        relay = f"udp://127.0.0.1:{placement.relay_port}?{RELAY_READ_OPTIONS}"
        return [*args, "-f", "mpegts", "-i", relay]
    assert spec.input_stream_url is not None  # guaranteed by InputSpec validation
    nested = NESTED_PROTOCOLS.get(spec.input_type)
    if nested is not None:
        args += ["-protocol_whitelist", nested]
    return [*args, "-i", spec.input_stream_url]


def _listen_args(spec: InputSpec, placement: Placement) -> list[str]:
    listen = spec.input_stream_listen_port
    assert listen is not None  # guaranteed by InputSpec validation
    where = f"{placement.listen_address}:{listen.port}"
    path = f"live/{spec.input_stream_key or placement.restream_id}"
    match spec.input_type:
        case InputType.SRT_LISTEN:
            secret = (
                f"&passphrase={spec.input_stream_key}&pbkeylen=16" if spec.input_stream_key else ""
            )
            return ["-i", f"srt://{where}?mode=listener{secret}"]
        case InputType.RTMP_LISTEN:
            return ["-listen", "1", "-i", f"rtmp://{where}/{path}"]
        case InputType.RTSP_LISTEN:
            return ["-rtsp_flags", "listen", "-i", f"rtsp://{where}/{path}"]
        case InputType.UDP_LISTEN:
            return ["-i", f"udp://{where}?overrun_nonfatal=1&fifo_size=1000000"]
        case _:  # HTTP
            return ["-listen", "1", "-i", f"http://{where}/{path}"]


def ingest_url(spec: InputSpec, address: str, restream_id: str) -> str | None:
    """Where a publisher sends the stream of a listen input, on the node at `address`."""
    listen = spec.input_stream_listen_port
    if spec.input_type not in LISTEN_INPUTS or listen is None:
        return None
    where = f"{address}:{listen.port}"
    path = f"live/{spec.input_stream_key or restream_id}"
    secret = f"?passphrase={spec.input_stream_key}&pbkeylen=16" if spec.input_stream_key else ""
    return {
        InputType.SRT_LISTEN: f"srt://{where}{secret}",
        InputType.RTMP_LISTEN: f"rtmp://{where}/{path}",
        InputType.RTSP_LISTEN: f"rtsp://{where}/{path}",
        InputType.UDP_LISTEN: f"udp://{where}",
        InputType.HTTP_LISTEN: f"http://{where}/{path}",
    }[spec.input_type]


def _map_args(spec: InputSpec) -> list[str]:
    if spec.input_type is InputType.GENERATE_TEST_VIDEO:
        return ["-map", "0:v:0", "-map", "1:a:0"]
    # The first video and the first audio stream, each only if the source has one.
    return ["-map", "0:v:0?", "-map", "0:a:0?"]


# -- video ---------------------------------------------------------------------------------


def _video_args(definition: RestreamDefinition, transcoding: TranscodingSpec | None) -> list[str]:
    spec = definition.input
    codec = transcoding.video_transcoding if transcoding else None
    if codec is None:
        if spec.input_type is not InputType.GENERATE_TEST_VIDEO:
            return ["-c:v", "copy"]
        return _test_video_encode(spec)
    assert transcoding is not None
    args = ["-c:v", codec.value]
    if transcoding.preset is not None:
        args += ["-preset", transcoding.preset.value]
    if transcoding.tune is not None:
        args += ["-tune", transcoding.tune.value]
    args += _rate_control(transcoding)
    args += _key_frames(definition, transcoding)
    if transcoding.pix_fmt is not None:
        args += ["-pix_fmt", transcoding.pix_fmt.value]
    filters = _video_filters(transcoding)
    if filters:
        args += ["-vf", ",".join(filters)]
    return args


def _test_video_encode(spec: InputSpec) -> list[str]:
    bitrate = spec.test_video_bitrate
    return [
        "-c:v", TEST_VIDEO_ENCODER, "-preset", TEST_VIDEO_PRESET, "-tune", "zerolatency",
        "-b:v", f"{bitrate}k", "-maxrate", f"{bitrate}k", "-bufsize", f"{2 * bitrate}k",
        "-g", str(2 * spec.encoding_rate), "-pix_fmt", "yuv420p",
    ]  # fmt: skip


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


def _key_frames(definition: RestreamDefinition, transcoding: TranscodingSpec) -> list[str]:
    args = []
    if transcoding.gop is not None:
        args += ["-g", str(transcoding.gop)]
    if transcoding.force_key_frames is not None:
        args += ["-force_key_frames", _key_frame_expression(transcoding.force_key_frames)]
    elif transcoding.gop is None and has_segments(definition):
        # HLS cuts segments at key frames: make one every segment.
        args += ["-force_key_frames", _key_frame_expression(number(DEFAULT_SEGMENT_S))]
    return args


def _video_filters(transcoding: TranscodingSpec) -> list[str]:
    filters = []
    width, height = transcoding.frame_width, transcoding.frame_height
    if width is not None or height is not None:
        # -2 keeps the aspect ratio and an even dimension, as encoders need.
        filters.append(f"scale={width or -2}:{height or -2}")
    if transcoding.filter_fps is not None:
        filters.append(f"fps={number(transcoding.filter_fps)}")
    return filters


def _key_frame_expression(value: str) -> str:
    """A bare number means "a key frame every N seconds"; anything else goes to FFmpeg as is."""
    try:
        seconds = float(value)
    except ValueError:
        return value
    return f"expr:gte(t,n_forced*{number(seconds)})"


def _u30_video_args(spec: InputSpec, transcoding: TranscodingSpec) -> list[str]:
    """Encode (and scale) on the U30 card, as the Xilinx Video SDK documents it."""
    codec = transcoding.video_transcoding
    assert codec is not None
    width, height = transcoding.frame_width, transcoding.frame_height
    resize = width is not None or height is not None
    if spec.input_type is GENERATE:
        # A raw signal is already in host memory at the size asked for: scale it there.
        args = ["-map", "0:v:0", "-map", "1:a:0"]
        if resize:
            args += ["-vf", f"scale={width or -2}:{height or -2}"]
    elif resize:
        # multiscale_xma wants both sides, each a multiple of 4.
        out_w, out_h = (width or height or 0), (height or width or 0)
        scale = (
            f"multiscale_xma=outputs=1:out_1_width={_multiple_of_4(out_w)}"
            f":out_1_height={_multiple_of_4(out_h)}:out_1_rate=full[v]"
        )
        args = ["-filter_complex", scale, "-map", "[v]", "-map", "0:a:0?"]
    else:
        args = ["-map", "0:v:0", "-map", "0:a:0?"]
    args += ["-c:v", codec.value]
    if transcoding.output_video_bitrate is not None:
        args += ["-b:v", f"{transcoding.output_video_bitrate}K"]
    if transcoding.gop is not None:
        args += ["-g", str(transcoding.gop)]
    slices = transcoding.slices
    if codec is VideoCodec.MPSOC_VCU_H264 and _is_4k(spec, transcoding):
        slices = 4  # the SDK: 4K H.264 needs -slices 4 to run in real time
    if slices is not None:
        args += ["-slices", str(slices)]
    if transcoding.cores is not None:
        args += ["-cores", str(transcoding.cores)]
    if transcoding.force_key_frames is not None:
        args += ["-force_key_frames", _key_frame_expression(transcoding.force_key_frames)]
    if transcoding.filter_fps is not None:
        # Frames on the card cannot go through the software fps filter; -r drops and repeats
        # frame references instead.
        args += ["-r", number(transcoding.filter_fps)]
    return args


def _is_4k(spec: InputSpec, transcoding: TranscodingSpec) -> bool:
    width = transcoding.frame_width
    height = transcoding.frame_height
    if width is None and height is None and spec.input_type is GENERATE:
        width, height = spec.resolution_width, spec.resolution_height
    return (width or 0) * (height or 0) >= FOUR_K_PIXELS


def _multiple_of_4(value: int) -> int:
    return max(4, value - value % 4)


# -- audio ---------------------------------------------------------------------------------


def _audio_args(spec: InputSpec, transcoding: TranscodingSpec | None) -> list[str]:
    codec = transcoding.audio_transcoding if transcoding else None
    resync = transcoding is not None and bool(transcoding.audio_sync)
    if codec is None and spec.input_type is not GENERATE and not resync:
        return ["-c:a", "copy"]
    args = ["-c:a", AUDIO_ENCODERS[codec or AudioCodec.AAC]]
    if resync:
        # Stretch or squeeze the audio to its timestamps (at most 1000 samples a second).
        args += ["-af", "aresample=async=1000"]
    if transcoding is not None and transcoding.output_audio_bitrate is not None:
        args += ["-b:a", f"{transcoding.output_audio_bitrate}k"]
    if transcoding is not None and transcoding.sample_rate is not None:
        args += ["-ar", str(transcoding.sample_rate)]
    return args
