"""What a restream needs from a node, and what a node offers. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.ffmpeg.argv import AUDIO_ENCODERS, TEST_VIDEO_ENCODER
from common.restreams.schemas import AudioCodec, InputType, RestreamDefinition


@dataclass(frozen=True)
class Requirements:
    """The FFmpeg encoders a restream cannot run without."""

    encoders: frozenset[str]


def requirements(definition: RestreamDefinition) -> Requirements:
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
    if audio is not None:
        encoders.add(AUDIO_ENCODERS[audio])
    return Requirements(encoders=frozenset(encoders))


def node_capabilities(
    *, cores: int, ffmpeg: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The capabilities document a worker advertises in its lease and its node row."""
    return {"cpu": {"cores": cores}, "ffmpeg": ffmpeg, "labels": labels or {}}


def encoders_of(capabilities: dict[str, Any]) -> frozenset[str]:
    ffmpeg = capabilities.get("ffmpeg") or {}
    return frozenset(ffmpeg.get("encoders") or ())
