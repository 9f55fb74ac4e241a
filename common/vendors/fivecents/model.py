"""The 5centsCDN model's words: protocols, codecs, modes, the fields a request sets, the farm's
servers, and which restreams are this surface's streams."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from common.definitions.kinds import InputType, OutputType, Preset, VideoCodec
from common.definitions.schedule import Schedule
from common.definitions.states import Hold, Surface
from common.errors import NotFound
from common.models import Restream

Codec = Literal["h264", "h265"]
# The encode asked for, and the source codec that makes it unnecessary.
ENCODES: dict[str, tuple[VideoCodec, Preset, Literal["h264", "hevc"]]] = {
    "h264": (VideoCodec.LIBX264, Preset.VERYFAST, "h264"),
    "h265": (VideoCodec.LIBX265, Preset.ULTRAFAST, "hevc"),
}
MODES: dict[str, InputType] = {
    "rtmp": InputType.RTMP_URL,
    "hls": InputType.HLS_URL,
    "http": InputType.HTTP_URL,
    "dash": InputType.MPEG_DASH_URL,
    "srt": InputType.SRT_URL,
    "rtsp": InputType.RTSP_URL,
    "udp": InputType.UDP_URL,
}
# Edge features of a CDN: shown disabled, refused when asked for.
CDN_ONLY = {
    "geoblock": "geoblocking",
    "securetoken": "secure tokens",
    "domainlock": "domain lock",
    "useragent": "user-agent rules",
    "ipaccess": "IP rules",
    "ndvr": "nDVR",
    "record": "recording",
    "adInsertion": "ad insertion",
    "rtmpauth": "RTMP publish authentication",
}


class Protocol(StrEnum):
    HLS = "HLS"
    DASH = "DASH"
    RTMP = "RTMP"
    RTSP = "RTSP"


PLAYBACK_OUTPUTS = {
    Protocol.HLS: OutputType.HLS,
    Protocol.DASH: OutputType.DASH,
    Protocol.RTMP: OutputType.LOCAL_RTMP_URL,
    Protocol.RTSP: OutputType.LOCAL_RTSP_URL,
}
# The node setting each server-bound playback needs.
PLAYBACK_SERVERS = {
    Protocol.RTMP: ("local_rtmp_url", "nginx-rtmp: STREAMFLEET_RTMP_SERVER_PORT"),
    Protocol.RTSP: ("local_rtsp_url", "STREAMFLEET_LOCAL_RTSP_URL"),
}


class StreamNotFound(NotFound):
    def __init__(self, number: int | str) -> None:
        super().__init__(f"stream {number} not found")


class PlatformNotFound(NotFound):
    def __init__(self, number: int | str) -> None:
        super().__init__(f"platform {number} not found")


@dataclass(frozen=True)
class StreamFields:
    """What a request sets; None leaves a field as it is."""

    name: str | None = None
    codec: Codec | None = None
    urls: list[str] | None = None
    mode: str | None = None
    servers: str | None = None  # "11,211": server ids or region names, comma-separated
    protocols: list[Protocol] | None = None
    audiofix: bool | None = None
    draft: bool | None = None
    restreamtype: str | None = None
    platformtype: str | None = None


@dataclass(frozen=True)
class PlatformFields:
    name: str | None = None
    url: str | None = None
    key: str | None = None
    is_srt: bool | None = None
    disabled: bool | None = None
    schedule: Schedule | None = None  # replaces its schedule
    clear_schedule: bool = False  # `schedule: instant` with no length: none


@dataclass(frozen=True)
class Server:
    """One server the farm offers (a `server` label, else a `region` label) and its nodes."""

    id: str
    label: Literal["server", "region"]  # the node label the id is a value of
    region: str | None
    nodes: list[str]


def is_stream(restream: Restream) -> bool:
    return restream.surface == Surface.FIVECENTS and restream.source_id is None


def holds_of(restream: Restream) -> frozenset[Hold]:
    return frozenset(Hold(h) for h in restream.holds)
