"""What a worker node offers, as it advertises it in its lease and its row: typed, so that no
module reads it by string keys. Pure; the worker builds it (`common.nodes.capabilities`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

LOCAL_RTMP = "local-rtmp"  # the feature of a node with its own RTMP server
LOCAL_RTSP = "local-rtsp"  # the feature of a node with its own RTSP server


def protocol(name: str) -> str:
    """The feature of a node whose FFmpeg speaks the protocol `name`."""
    return f"protocol:{name}"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")  # written by another version: what we know of it


class CpuOffer(_Part):
    cores: int = 1
    overcommit: float = 1.0
    millicores: int | None = Field(None, description="Offered; default cores x 1000.")

    @property
    def offered_millicores(self) -> int:
        return self.millicores if self.millicores is not None else self.cores * 1000


class U30Offer(_Part):
    devices: list[int] = Field(default_factory=list)
    cards: int = 0
    slots: int = 0
    source: str = "none"  # "sysfs", "configuration" or "none"


class FfmpegOffer(_Part):
    binary: str = ""
    version: str = ""
    major: int | None = None
    encoders: list[str] = Field(default_factory=list)
    failed_encoders: dict[str, str] = Field(default_factory=dict)
    decoders: list[str] = Field(default_factory=list)
    protocols: list[str] = Field(default_factory=list)
    hwaccels: list[str] = Field(default_factory=list)


class NodeCapabilities(_Part):
    """Everything placement and playback need to know of a node."""

    cpu: CpuOffer = Field(default_factory=CpuOffer)
    u30: U30Offer = Field(default_factory=U30Offer)
    ffmpeg: FfmpegOffer = Field(default_factory=FfmpegOffer)
    local_rtmp_url: str | None = None
    local_rtsp_url: str | None = None
    playback_base_url: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # The media server modules it can run ("srt", "rtmp"): those whose engine it has.
    server_kinds: list[str] = Field(default_factory=list)

    @property
    def encoders(self) -> frozenset[str]:
        return frozenset(self.ffmpeg.encoders)

    @property
    def features(self) -> frozenset[str]:
        """What it offers besides encoders: its FFmpeg's protocols, its own servers."""
        found = {protocol(p) for p in self.ffmpeg.protocols}
        if self.local_rtmp_url:
            found.add(LOCAL_RTMP)
        if self.local_rtsp_url:
            found.add(LOCAL_RTSP)
        found |= {f"{kind}-server" for kind in self.server_kinds}
        return frozenset(found)
