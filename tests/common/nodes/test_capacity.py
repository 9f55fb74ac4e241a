"""The cost model and the XRM arithmetic: table tests."""

from __future__ import annotations

from typing import Any

import pytest

from common.definitions.restream import RestreamDefinition
from common.nodes.capacity import (
    COPY_MILLICORES,
    ENGINE_UNITS,
    UNITS_PER_SLOT,
    Cost,
    Reservation,
    U30Load,
    cost_of,
    usage_of,
    xrm_units,
)

OUT = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}
PULL = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}


def raw_signal(width: int = 1920, height: int = 1080, fps: int = 24) -> dict[str, Any]:
    return {
        "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
        "resolution_width": width,
        "resolution_height": height,
        "encoding_rate": fps,
    }


def cost(input: dict[str, Any], transcoding: dict[str, Any] | None = None) -> Cost:
    return cost_of(
        RestreamDefinition.model_validate(
            {"input": input, "transcoding": transcoding, "outputs": [OUT]}
        )
    )


@pytest.mark.parametrize(
    ("width", "height", "fps", "units"),
    [
        (1920, 1080, 60, UNITS_PER_SLOT),  # the vendor's slot: one 1080p60 transcode
        (3840, 2160, 60, ENGINE_UNITS),  # 4Kp60 fills an engine
        (1920, 1080, 30, 125_000),
        (1280, 720, 30, 55_555),
        (1280, 720, 29.97, 55_555),  # XRM rounds the frame rate
        (16, 16, 1, 1),  # never zero
    ],
)
def test_xrm_units(width: int, height: int, fps: float, units: int) -> None:
    assert xrm_units(width, height, fps) == units


@pytest.mark.parametrize(
    ("input", "transcoding", "millicores"),
    [
        (PULL, None, COPY_MILLICORES),  # stream copy: a small constant
        (PULL, {"audio_trancoding": "aac"}, COPY_MILLICORES + 20),
        # a raw test signal, 1080p24, encoded by libx264 veryfast, plus its AAC audio:
        # 50 + 1.7 x 49.8 + 18.6 x 49.8 + 20
        (raw_signal(), None, 1081),
        # pulled (assumed 1080p30): decode 4.2 x 62.2, scale 1.0 x 62.2, encode 720p30 medium
        # 39.7 x 27.6: 50 + 261 + 62 + 1097
        (PULL, {"video_transcoding": "libx264", "frame_width": 1280, "frame_height": 720}, 1471),
        (PULL, {"video_transcoding": "libx265", "preset": "ultrafast"}, 50 + 261 + 2893),
    ],
)
def test_software_costs_scale_with_pixel_rate_and_preset(
    input: dict[str, Any], transcoding: dict[str, Any] | None, millicores: int
) -> None:
    result = cost(input, transcoding)
    assert result.u30 is None
    assert result.cpu_millicores == pytest.approx(millicores, abs=2)


def test_slower_presets_and_bigger_frames_cost_more() -> None:
    fast = cost(PULL, {"video_transcoding": "libx264", "preset": "veryfast"})
    slow = cost(PULL, {"video_transcoding": "libx264", "preset": "slow"})
    small = cost(PULL, {"video_transcoding": "libx264", "preset": "veryfast", "frame_width": 640})
    assert small.cpu_millicores < fast.cpu_millicores < slow.cpu_millicores


@pytest.mark.parametrize(
    ("input", "transcoding", "load"),
    [
        # a 1080p60 test signal encoded on the card: one slot, no decode (the source is raw)
        (raw_signal(fps=60), {"video_transcoding": "mpsoc_vcu_h264"}, U30Load(encoder=250_000)),
        # a pulled stream (assumed 1080p30) transcoded to HEVC at the same size
        (PULL, {"video_transcoding": "mpsoc_vcu_hevc"}, U30Load(decoder=125_000, encoder=125_000)),
        # ... and scaled to 720p on the card's scaler (twice the capacity of the other engines)
        (
            PULL,
            {"video_transcoding": "mpsoc_vcu_h264", "frame_width": 1280, "frame_height": 720},
            U30Load(decoder=125_000, scaler=62_500, encoder=55_555),
        ),
    ],
)
def test_u30_costs_follow_xrm(
    input: dict[str, Any], transcoding: dict[str, Any], load: U30Load
) -> None:
    result = cost(input, transcoding)
    assert result.u30 == load
    software = cost(input, {**transcoding, "video_transcoding": "libx264", "preset": "ultrafast"})
    assert result.cpu_millicores < software.cpu_millicores / 2  # the host only feeds the card


def test_u30_load_arithmetic() -> None:
    slot = U30Load(encoder=UNITS_PER_SLOT)
    full = slot + slot + slot + slot
    assert full.encoder == ENGINE_UNITS
    assert full.free() == U30Load(ENGINE_UNITS, ENGINE_UNITS, 0, ENGINE_UNITS)
    assert slot.fits_in(slot.free())
    assert not slot.fits_in(full.free())
    assert U30Load.from_dict(slot.as_dict()) == slot


def test_usage_adds_up_reservations_per_device() -> None:
    usage = usage_of(
        [
            Reservation(100),
            Reservation(200, 0, U30Load(encoder=250_000)),
            Reservation(300, 1, U30Load(encoder=250_000)),
            Reservation(400, 0, U30Load(decoder=5, encoder=250_000)),
        ]
    )
    assert usage.cpu_millicores == 1000
    assert usage.u30 == {0: U30Load(decoder=5, encoder=500_000), 1: U30Load(encoder=250_000)}
