"""Requirements and placement: table tests."""

from __future__ import annotations

from typing import Any

import pytest

from common.nodes.capabilities import Requirements, requirements
from common.nodes.placement import Candidate, Placed, Unplaced, place
from common.restreams.schemas import RestreamDefinition

OUT = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}
PULL = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"}
FULL = frozenset({"libx264", "libx265", "aac", "libmp3lame"})


def definition(
    input: dict[str, Any], transcoding: dict[str, Any] | None = None
) -> RestreamDefinition:
    return RestreamDefinition.model_validate(
        {"input": input, "transcoding": transcoding, "outputs": [OUT]}
    )


@pytest.mark.parametrize(
    ("input", "transcoding", "encoders"),
    [
        (PULL, None, set()),  # stream copy needs no encoder
        (PULL, {"video_transcoding": "libx265"}, {"libx265"}),
        (PULL, {"audio_trancoding": "mp3"}, {"libmp3lame"}),
        ({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, None, {"libx264", "aac"}),
        ({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
         {"video_transcoding": "mpsoc_vcu_h264", "audio_trancoding": "mp3"},
         {"mpsoc_vcu_h264", "libmp3lame"}),
    ],
)  # fmt: skip
def test_requirements(
    input: dict[str, Any], transcoding: dict[str, Any] | None, encoders: set[str]
) -> None:
    assert requirements(definition(input, transcoding)).encoders == encoders


def node(name: str, load: int, encoders: frozenset[str] = FULL) -> Candidate:
    return Candidate(name, f"10.0.0.{load}", encoders, load)


NEEDS_X264 = Requirements(frozenset({"libx264"}))


@pytest.mark.parametrize(
    ("candidates", "policy", "expected"),
    [
        ([node("a", 3), node("b", 1), node("c", 2)], "spread", "b"),
        ([node("a", 3), node("b", 1), node("c", 2)], "pack", "a"),
        ([node("b", 1), node("a", 1)], "spread", "a"),  # ties by name
        ([node("a", 0, frozenset({"aac"})), node("b", 9)], "spread", "b"),  # capability first
    ],
)
def test_place_picks_by_policy(candidates: list[Candidate], policy: Any, expected: str) -> None:
    result = place(NEEDS_X264, candidates, policy)
    assert isinstance(result, Placed) and result.node == expected


@pytest.mark.parametrize(
    ("needs", "candidates", "reason"),
    [
        (NEEDS_X264, [], "no live worker node: start one with `streamfleet worker`"),
        (Requirements(frozenset({"mpsoc_vcu_h264"})), [node("a", 0)],
         "no live node's FFmpeg has the encoder mpsoc_vcu_h264"),
        (Requirements(frozenset({"libx264", "libx265"})),
         [node("a", 0, frozenset({"libx264"})), node("b", 0, frozenset({"libx265"}))],
         "no single live node's FFmpeg has all of libx264, libx265"),
    ],
)  # fmt: skip
def test_nothing_fits_says_why(
    needs: Requirements, candidates: list[Candidate], reason: str
) -> None:
    assert place(needs, candidates) == Unplaced(reason)
