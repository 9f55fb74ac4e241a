"""What a restream needs from a node, and what a node offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.definitions.kinds import FILE_OUTPUTS, AudioCodec, InputType, OutputType
from common.definitions.node import (
    LOCAL_RTMP,
    LOCAL_RTSP,
    CpuOffer,
    FfmpegOffer,
    NodeCapabilities,
    U30Offer,
    protocol,
)
from common.definitions.restream import RestreamDefinition
from common.ffmpeg.argv import AUDIO_ENCODERS, TEST_VIDEO_ENCODER
from common.nodes.capacity import (
    COPY_MILLICORES,
    DEVICES_PER_CARD,
    SLOTS_PER_DEVICE,
    Capacity,
    Cost,
    cost_of,
)

XILINX_VENDOR = 0x10EE
# PCI device ids of the user physical function of a U30 device (XRT's xocl table: 0x503D, and
# 0x513D for the newer shell). Each card carries two devices; each device also has a
# management function (0x503C / 0x513C), which a VM or a VT1 instance may not see, so only
# user functions are counted: one per device.
U30_USER_FUNCTION_IDS = frozenset({0x503D, 0x513D})


LISTEN_PROTOCOLS = {
    InputType.SRT_LISTEN: "srt",
    InputType.RTMP_LISTEN: "rtmp",
    InputType.RTSP_LISTEN: "rtsp",
    InputType.UDP_LISTEN: "udp",
    InputType.HTTP_LISTEN: "http",
}


@dataclass(frozen=True)
class Requirements:
    """What a restream cannot run without: FFmpeg encoders, other features of the node (its
    FFmpeg's protocols as "protocol:<name>", a local RTMP server), resources, a listen port."""

    encoders: frozenset[str]
    cost: Cost = field(default_factory=lambda: Cost(COPY_MILLICORES))
    listen_port: str | None = None  # "2035/UDP"
    features: frozenset[str] = frozenset()
    colocate: str | None = None  # the node it must run on (where its relay source runs)
    # Labels a node must carry: for each label, one of the values.
    node_selector: tuple[tuple[str, frozenset[str]], ...] = ()

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) in values for key, values in self.node_selector)


def _features(definition: RestreamDefinition) -> frozenset[str]:
    spec = definition.input
    found = set()
    if spec.input_stream_url:
        found.add(protocol(urlsplit(spec.input_stream_url).scheme.lower()))
    if spec.input_type in LISTEN_PROTOCOLS:
        found.add(protocol(LISTEN_PROTOCOLS[spec.input_type]))
    for output in definition.outputs:
        if output.output_type in FILE_OUTPUTS:
            found.add(protocol("file"))
        elif output.output_type is OutputType.LOCAL_RTMP_URL:
            found |= {LOCAL_RTMP, protocol("rtmp")}
        elif output.output_type is OutputType.LOCAL_RTSP_URL:
            found |= {LOCAL_RTSP, protocol("rtsp")}
        elif output.output_stream_url:
            found.add(protocol(urlsplit(output.output_stream_url).scheme.lower()))
    return frozenset(found)


def requirements(definition: RestreamDefinition) -> Requirements:
    """Pure: the needs of `definition`."""
    encoders: set[str] = set()
    transcoding = definition.transcoding
    video = transcoding.video_transcoding if transcoding else None
    audio = transcoding.audio_transcoding if transcoding else None
    if video is not None:
        encoders.add(video.value)
    if definition.input.input_type is InputType.GENERATE_TEST_VIDEO:
        if video is None:
            encoders.add(TEST_VIDEO_ENCODER)
        audio = audio or AudioCodec.AAC
    if transcoding is not None and transcoding.audio_sync:
        audio = audio or AudioCodec.AAC
    if audio is not None:
        encoders.add(AUDIO_ENCODERS[audio])
    listen = definition.input.input_stream_listen_port
    port = f"{listen.port}/{listen.transport}" if listen is not None else None
    return Requirements(
        encoders=frozenset(encoders),
        cost=cost_of(definition),
        listen_port=port,
        features=_features(definition),
        node_selector=tuple(
            (key, frozenset(values)) for key, values in (definition.node_selector or {}).items()
        ),
    )


def node_capabilities(
    *,
    cores: int,
    ffmpeg: dict[str, Any],
    cpu_millicores: int | None = None,
    overcommit: float = 1.0,
    u30_devices: int = 0,
    u30_source: str = "none",
    local_rtmp_url: str | None = None,
    local_rtsp_url: str | None = None,
    playback_base_url: str | None = None,
    labels: dict[str, str] | None = None,
    server_kinds: list[str] | None = None,
) -> NodeCapabilities:
    """The capabilities a worker advertises in its lease and its node row."""
    millicores = cpu_millicores if cpu_millicores is not None else round(cores * 1000 * overcommit)
    return NodeCapabilities(
        cpu=CpuOffer(cores=cores, overcommit=overcommit, millicores=millicores),
        u30=U30Offer(
            devices=list(range(u30_devices)),
            cards=-(-u30_devices // DEVICES_PER_CARD),
            slots=u30_devices * SLOTS_PER_DEVICE,
            source=u30_source,
        ),
        ffmpeg=FfmpegOffer.model_validate(ffmpeg),
        local_rtmp_url=local_rtmp_url,
        local_rtsp_url=local_rtsp_url,
        playback_base_url=playback_base_url,
        labels=labels or {},
        server_kinds=server_kinds or [],
    )


def capacity_of(capabilities: NodeCapabilities) -> Capacity:
    return Capacity(capabilities.cpu.offered_millicores, tuple(capabilities.u30.devices))


def count_u30_devices(sysfs_pci_devices: Path = Path("/sys/bus/pci/devices")) -> int:
    """U30 devices on this machine, from PCI ids in sysfs (user functions only: one each)."""
    count = 0
    for device in sysfs_pci_devices.glob("*"):
        try:
            vendor = int((device / "vendor").read_text(), 16)
            product = int((device / "device").read_text(), 16)
        except (OSError, ValueError):
            continue
        if vendor == XILINX_VENDOR and product in U30_USER_FUNCTION_IDS:
            count += 1
    return count
