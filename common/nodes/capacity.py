"""What a restream costs and what a node can hold (DESIGN §5). Pure.

CPU is counted in millicores. A software encode costs in proportion to its pixel rate
(width x height x fps) at a rate that depends on the codec and preset; the rates were
measured with `bench/calibrate_cost.py` (FFmpeg 5.1, libx264 0.164, libx265 3.5, 2 vCPU
x86_64) and can be re-measured on other hardware the same way.

The Alveo U30 is counted as the Xilinx Resource Manager (XRM) plugins count it: each device
has four engines (decoder, scaler, encoder, lookahead) of 1,000,000 load units each. A job's
decoder, encoder and lookahead load is its pixel rate (frame rate rounded to an integer) over
1920x1080x60x4, so a 1080p60 encode takes 250,000 encoder units; the scaler's maximum is twice
that (3840x2160x60x2) and its load counts the input's pixel rate. The lookahead engine is used
only with `-lookahead_depth` > 0, which streamfleet does not set. Operators count *slots*: one
1080p60 transcode, four per device, eight per card (two devices) — the Video SDK's own table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from common.definitions.kinds import InputType, Preset, VideoCodec
from common.definitions.restream import RestreamDefinition, TranscodingSpec

ENGINE_UNITS = 1_000_000
U30_ENGINES = ("decoder", "scaler", "encoder", "lookahead")
XRM_MAX_PIXEL_RATE = 1920 * 1080 * 60 * 4  # decoder, encoder, lookahead
XRM_SCALER_MAX_PIXEL_RATE = 3840 * 2160 * 60 * 2
UNITS_PER_SLOT = 250_000
SLOTS_PER_DEVICE = 4
DEVICES_PER_CARD = 2

# Assumed for a pulled stream whose size the definition does not state.
ASSUMED_FRAME = (1920, 1080, 30.0)
# Demuxing and muxing a stream copy, whatever its size.
COPY_MILLICORES = 50
# Feeding and draining a U30 job: the host-side work of a hardware transcode.
U30_HOST_MILLICORES = 100
# Millicores per megapixel/second, measured (see module docstring); presets not measured are
# interpolated between their measured neighbours.
TEST_SOURCE_RATE = 1.7
DECODE_RATE = 4.2
SCALE_RATE = 1.0
AUDIO_ENCODE_MILLICORES = 20
ENCODE_RATES: dict[VideoCodec, dict[Preset, float]] = {
    VideoCodec.LIBX264: {
        Preset.ULTRAFAST: 6.1,  # measured
        Preset.SUPERFAST: 12.0,
        Preset.VERYFAST: 18.6,  # measured
        Preset.FASTER: 26.0,
        Preset.FAST: 32.0,
        Preset.MEDIUM: 39.7,  # measured
        Preset.SLOW: 60.0,
        Preset.SLOWER: 110.0,
        Preset.VERYSLOW: 220.0,
    },
    VideoCodec.LIBX265: {
        Preset.ULTRAFAST: 46.5,  # measured
        Preset.SUPERFAST: 62.0,
        Preset.VERYFAST: 80.7,  # measured
        Preset.FASTER: 95.0,
        Preset.FAST: 105.0,
        Preset.MEDIUM: 115.0,  # measured
        Preset.SLOW: 230.0,
        Preset.SLOWER: 600.0,
        Preset.VERYSLOW: 1200.0,
    },
}
DEFAULT_PRESET = Preset.MEDIUM  # libx264's and libx265's own default
TEST_VIDEO_PRESET = Preset.VERYFAST  # what the argv builder encodes a raw test signal with


@dataclass(frozen=True)
class U30Load:
    """XRM load units on the four engines of one U30 device."""

    decoder: int = 0
    scaler: int = 0
    encoder: int = 0
    lookahead: int = 0

    def __add__(self, other: U30Load) -> U30Load:
        return U30Load(
            self.decoder + other.decoder,
            self.scaler + other.scaler,
            self.encoder + other.encoder,
            self.lookahead + other.lookahead,
        )

    def free(self) -> U30Load:
        """What is left of a device carrying this load."""
        return U30Load(
            ENGINE_UNITS - self.decoder,
            ENGINE_UNITS - self.scaler,
            ENGINE_UNITS - self.encoder,
            ENGINE_UNITS - self.lookahead,
        )

    def fits_in(self, free: U30Load) -> bool:
        return (
            self.decoder <= free.decoder
            and self.scaler <= free.scaler
            and self.encoder <= free.encoder
            and self.lookahead <= free.lookahead
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "decoder": self.decoder,
            "scaler": self.scaler,
            "encoder": self.encoder,
            "lookahead": self.lookahead,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> U30Load:
        return cls(
            **{k: int(data.get(k, 0)) for k in ("decoder", "scaler", "encoder", "lookahead")}
        )


@dataclass(frozen=True)
class Cost:
    """What a restream needs while it runs."""

    cpu_millicores: int
    u30: U30Load | None = None  # None: no U30 device needed


@dataclass(frozen=True)
class Capacity:
    """What a node offers: CPU millicores and its U30 device indexes."""

    cpu_millicores: int
    u30_devices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Usage:
    """What the restreams placed on a node already take."""

    cpu_millicores: int = 0
    u30: Mapping[int, U30Load] = field(default_factory=dict)

    def plus(self, cost: Cost, device: int | None) -> Usage:
        u30 = dict(self.u30)
        if cost.u30 is not None and device is not None:
            u30[device] = u30.get(device, U30Load()) + cost.u30
        return Usage(self.cpu_millicores + cost.cpu_millicores, u30)


class Reservation(NamedTuple):
    """What one placed restream holds on its node (stored on the restream row)."""

    cpu_millicores: int
    u30_device: int | None = None
    u30: U30Load | None = None
    listen_port: str | None = None


NO_RESERVATION = Reservation(0)


def usage_of(reservations: Iterable[Reservation]) -> Usage:
    """The sum of what those reservations hold (a node may hold thousands: plain sums)."""
    cpu = 0
    u30: dict[int, U30Load] = {}
    for reservation in reservations:
        cpu += reservation.cpu_millicores
        device = reservation.u30_device
        if reservation.u30 is not None and device is not None:
            u30[device] = u30.get(device, U30Load()) + reservation.u30
    return Usage(cpu, u30)


def xrm_units(width: int, height: int, fps: float, *, maximum: int = XRM_MAX_PIXEL_RATE) -> int:
    """XRM load of one stream on one engine: its pixel rate over the engine's maximum, at
    least 1 (as the XRM plugins round it)."""
    return max(1, int(ENGINE_UNITS * width * height * round(fps) / maximum))


def input_frame(definition: RestreamDefinition) -> tuple[int, int, float]:
    spec = definition.input
    if spec.input_type is InputType.GENERATE_TEST_VIDEO:
        return spec.resolution_width, spec.resolution_height, float(spec.encoding_rate)
    return ASSUMED_FRAME


def output_frame(definition: RestreamDefinition) -> tuple[int, int, float]:
    width, height, fps = input_frame(definition)
    transcoding = definition.transcoding
    if transcoding is None:
        return width, height, fps
    out_width, out_height = transcoding.frame_width, transcoding.frame_height
    if out_width is not None and out_height is None:
        out_height = round(height * out_width / width)
    elif out_height is not None and out_width is None:
        out_width = round(width * out_height / height)
    return out_width or width, out_height or height, transcoding.filter_fps or fps


def cost_of(definition: RestreamDefinition) -> Cost:
    """The resources `definition` takes while it runs."""
    transcoding = definition.transcoding
    codec = transcoding.video_transcoding if transcoding else None
    in_w, in_h, in_fps = input_frame(definition)
    out_w, out_h, out_fps = output_frame(definition)
    in_mpx = in_w * in_h * in_fps / 1e6
    out_mpx = out_w * out_h * out_fps / 1e6
    test_video = definition.input.input_type is InputType.GENERATE_TEST_VIDEO
    audio = AUDIO_ENCODE_MILLICORES if test_video or _audio_transcoded(transcoding) else 0
    source = TEST_SOURCE_RATE * in_mpx if test_video else 0.0

    if codec in (VideoCodec.MPSOC_VCU_H264, VideoCodec.MPSOC_VCU_HEVC):
        resized = (in_w, in_h) != (out_w, out_h)
        load = U30Load(
            decoder=0 if test_video else xrm_units(in_w, in_h, in_fps),
            scaler=xrm_units(in_w, in_h, in_fps, maximum=XRM_SCALER_MAX_PIXEL_RATE)
            if resized
            else 0,
            encoder=xrm_units(out_w, out_h, out_fps),
        )
        return Cost(_millicores(U30_HOST_MILLICORES + source + audio), load)
    if codec is None and not test_video:
        return Cost(COPY_MILLICORES + audio)
    if codec is None:  # a raw test signal, encoded as the argv builder does
        codec, preset = VideoCodec.LIBX264, TEST_VIDEO_PRESET
    else:
        assert transcoding is not None
        preset = transcoding.preset or DEFAULT_PRESET
    decode = 0.0 if test_video else DECODE_RATE * in_mpx
    scale = SCALE_RATE * in_mpx if (in_w, in_h) != (out_w, out_h) else 0.0
    encode = ENCODE_RATES[codec][preset] * out_mpx
    return Cost(_millicores(COPY_MILLICORES + source + decode + scale + encode + audio))


def _audio_transcoded(transcoding: TranscodingSpec | None) -> bool:
    return transcoding is not None and transcoding.audio_transcoding is not None


def _millicores(value: float) -> int:
    return max(1, round(value))
