"""The outputs of a restream's FFmpeg command line: one destination directly, several through
the tee muxer (escaped for FFmpeg's two readings of its argument), HLS and DASH written into
the node's media directory, and the copy a meter counts. Pure."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from common.definitions.kinds import FILE_OUTPUTS, InputType, OutputType
from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition
from common.ffmpeg.placement import Placement

# The muxer for each kind of destination.
OUTPUT_FORMATS: dict[OutputType, str] = {
    OutputType.LOCAL_RTMP_URL: "flv",
    OutputType.OTHER_RTMP_URL: "flv",
    OutputType.RTSP_URL: "rtsp",
    OutputType.SRT_URL: "mpegts",
    OutputType.UDP_URL: "mpegts",
    OutputType.HTTP_URL: "mpegts",
    OutputType.RTP_URL: "rtp_mpegts",
    OutputType.HLS: "hls",
    OutputType.DASH: "dash",
    OutputType.RELAY: "mpegts",
    OutputType.LOCAL_RTSP_URL: "rtsp",
}
GENERATE = InputType.GENERATE_TEST_VIDEO
DEFAULT_SEGMENT_S = 2.0
DEFAULT_FPS = 30.0  # what a stream whose rate the definition does not give is assumed to run at
HLS_LIST_SIZE = 6  # segments in a playlist (and in a DASH manifest's window)
HLS_PLAYLIST = "index.m3u8"
DASH_MANIFEST = "manifest.mpd"
_DIRECTORY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what may name a media subdirectory


# Outputs with no session to close and no file to finish: a stop may end FFmpeg at once.
SESSIONLESS_OUTPUTS = frozenset({OutputType.UDP_URL, OutputType.RTP_URL, OutputType.RELAY})


def needs_clean_end(definition: RestreamDefinition) -> bool:
    """Whether a stop must let FFmpeg finish its outputs: an HLS or DASH playlist to end, a
    file's trailer to write, a session to close (RTMP's unpublish, SRT's shutdown, RTSP's
    teardown, an HTTP upload). UDP, RTP and the node's relay carry none of these: a stop of a
    restream with only such outputs ends its FFmpeg at once (FFmpeg 7 and later notice a
    polite stop only at their next progress report)."""
    return any(o.output_type not in SESSIONLESS_OUTPUTS for o in definition.outputs)


def needs_meter(definition: RestreamDefinition) -> bool:
    """FFmpeg reports no output size for the tee muxer, nor for HLS and DASH: such restreams
    also send a copy to a loopback port the worker counts (a relay output already is one)."""
    outputs = definition.outputs
    if any(o.output_type is OutputType.RELAY for o in outputs):
        return False
    return len(outputs) > 1 or outputs[0].output_type in FILE_OUTPUTS


def output_args(definition: RestreamDefinition, placement: Placement) -> list[str]:
    """One output directly; several through the tee muxer, so one encode feeds them all and a
    destination that fails is dropped (`onfail=ignore`) while the others keep going. A meter,
    if the placement has one, is the tee's last slave."""
    outputs = definition.outputs
    meter = placement.meter_port
    if len(outputs) == 1 and meter is None:
        options = _muxer_options(definition, outputs[0], placement)
        args = ["-f", OUTPUT_FORMATS[outputs[0].output_type]]
        for name, value in options:
            args += [f"-{name}", value]
        return [*args, _target(outputs[0], placement)]
    slaves = []
    for output in outputs:
        options = [("f", OUTPUT_FORMATS[output.output_type]), ("onfail", "ignore")]
        options += _muxer_options(definition, output, placement)
        slaves.append(_tee_slave(options, _target(output, placement)))
    if meter is not None:
        options = [("f", "mpegts"), ("onfail", "ignore")]
        slaves.append(_tee_slave(options, f"udp://127.0.0.1:{meter}?pkt_size=1316"))
    return ["-flags", "+global_header", "-f", "tee", "|".join(slaves)]


def _muxer_options(
    definition: RestreamDefinition, output: OutputSpec, placement: Placement
) -> list[tuple[str, str]]:
    if output.output_type is OutputType.RTSP_URL:
        return [("rtsp_transport", "tcp")]
    if output.output_type is OutputType.LOCAL_RTSP_URL:
        # The node's own RTSP server takes RTP over UDP only (on loopback nothing is lost); a
        # server of the operator's elsewhere (STREAMFLEET_LOCAL_RTSP_URL) gets TCP.
        host = urlsplit(placement.local_rtsp_url or "").hostname
        return [("rtsp_transport", "udp" if host in ("127.0.0.1", "localhost", "::1") else "tcp")]
    if output.output_type is OutputType.DASH:
        return [
            ("seg_duration", number(segment_seconds(definition))),
            ("window_size", str(HLS_LIST_SIZE)),
            ("extra_window_size", "2"),
            ("remove_at_exit", "1"),
            ("use_template", "1"),
            ("use_timeline", "1"),
        ]
    if output.output_type is OutputType.HLS:
        return [
            ("hls_time", number(segment_seconds(definition))),
            ("hls_list_size", str(HLS_LIST_SIZE)),
            ("hls_flags", "delete_segments+independent_segments+program_date_time"),
            ("hls_delete_threshold", "2"),
            ("hls_segment_filename", f"{hls_dir(placement, output)}/segment_%06d.ts"),
        ]
    return []


def _target(output: OutputSpec, placement: Placement) -> str:
    if output.output_type is OutputType.RELAY:
        if placement.relay_port is None:
            raise ValueError("OUTPUT_TYPE_RELAY needs the node's relay port")
        return f"udp://127.0.0.1:{placement.relay_port}?pkt_size=1316"
    if output.output_type is OutputType.HLS:
        return f"{hls_dir(placement, output)}/{HLS_PLAYLIST}"
    if output.output_type is OutputType.DASH:
        return f"{hls_dir(placement, output)}/{DASH_MANIFEST}"
    if output.output_type is OutputType.LOCAL_RTMP_URL:
        if placement.local_rtmp_url is None:
            raise ValueError("this node has no local RTMP server (STREAMFLEET_RTMP_SERVER_PORT)")
        return output.target_url(_local(output, placement.local_rtmp_url))
    if output.output_type is OutputType.LOCAL_RTSP_URL:
        if placement.local_rtsp_url is None:
            raise ValueError("this node has no local RTSP server (STREAMFLEET_RTSP_SERVER_PORT)")
        return output.target_url(_local(output, placement.local_rtsp_url))
    return output.target_url()


def _local(output: OutputSpec, server: str) -> str:
    """A local output's URL may give a path on the node's RTMP server; its host is ignored."""
    if output.output_stream_url is None:
        return server
    path = urlsplit(output.output_stream_url).path
    return server.rstrip("/") + "/" + path.lstrip("/") if path.strip("/") else server


def hls_dir(placement: Placement, output: OutputSpec) -> str:
    """Where an HLS or DASH output's playlist (manifest) and segments live on the node:
    `<media dir>/<restream>/<output>`. Both names are checked again here, where they become
    a path the worker empties and FFmpeg writes into: one plain name each, never `..` or `/`."""
    parts = (placement.restream_id, output.id or "hls")
    for part in parts:
        if not _DIRECTORY_NAME.match(part):
            raise ValueError(f"{part!r} cannot name a directory of the media directory")
    return "/".join((placement.media_dir.rstrip("/"), *parts))


def segment_seconds(definition: RestreamDefinition) -> float:
    """HLS segment length: the GOP's duration when known, else the key frame interval."""
    transcoding = definition.transcoding
    if transcoding is not None and transcoding.gop is not None:
        fps = transcoding.filter_fps or _input_fps(definition.input)
        return round(transcoding.gop / fps, 3)
    if transcoding is not None and transcoding.force_key_frames is not None:
        try:
            return float(transcoding.force_key_frames)
        except ValueError:
            pass
    if transcoding is None and definition.input.input_type is GENERATE:
        return 2.0  # the test signal's GOP is two seconds
    return DEFAULT_SEGMENT_S


def has_segments(definition: RestreamDefinition) -> bool:
    """HLS or DASH: segments cut at key frames."""
    return any(o.output_type in FILE_OUTPUTS for o in definition.outputs)


def _input_fps(spec: InputSpec) -> float:
    return float(spec.encoding_rate) if spec.input_type is GENERATE else DEFAULT_FPS


def _tee_slave(options: list[tuple[str, str]], target: str) -> str:
    """One slave of the tee muxer's argument, `[name=value:...]target`, escaped for the two
    readings FFmpeg makes of it: the tee splits its argument at `|`, then reads each option
    value up to `:` or `]`. Both readings (`av_get_token`) take a backslash as an escape and
    a `'` as the start of a quoted run, so an unescaped quote in one URL would swallow every
    slave after it."""
    rendered = ":".join(f"{name}={_token_escape(value, ':]')}" for name, value in options)
    return _token_escape(f"[{rendered}]{target}", "|")


def _token_escape(value: str, terminators: str) -> str:
    """`value` as FFmpeg's `av_get_token` reads back unchanged up to one of `terminators`:
    a backslash before each terminator, backslash, quote and whitespace (leading and trailing
    whitespace would otherwise be dropped)."""
    specials = set(terminators) | set("\\' \t\r\n")
    return "".join("\\" + char if char in specials else char for char in value)


def number(value: float) -> str:
    """1.0 -> "1", 29.97 -> "29.97": the shortest form FFmpeg reads back as the same value."""
    return format(value, "g")
