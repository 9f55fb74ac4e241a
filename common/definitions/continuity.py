"""Continuity's part of a definition: how a restream keeps its outputs alive when its input
drops (`ContinuitySpec`), and what a restream must be for it (`continuity_problems`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.definitions.checks import check_url
from common.definitions.kinds import CONTINUITY_INPUTS, VideoCodec
from common.errors import FieldProblem

if TYPE_CHECKING:
    from common.definitions.restream import InputSpec, TranscodingSpec


IMAGE_SCHEMES = frozenset({"http", "https"})


class ContinuitySpec(BaseModel):
    """How a restream keeps its outputs alive when its input drops (a backup input, a slate)."""

    model_config = ConfigDict(extra="ignore")

    input_loss_ms: int = Field(
        1000, ge=200, le=30_000, description="An input silent this long is lost: switch away."
    )
    failback_s: int = Field(
        30, ge=0, le=86_400, description="Back to the primary once it has delivered this long."
    )
    failback: bool = Field(
        True,
        description="false: stay on the backup until it is lost, even once the primary is back.",
    )
    video_black_ms: int | None = Field(
        None,
        ge=500,
        le=60_000,
        description="An input whose picture stays black this long is lost too (default: not "
        "checked; checking decodes the input's video).",
    )
    video_frozen_ms: int | None = Field(
        None,
        ge=500,
        le=60_000,
        description="An input whose picture stays still this long is lost too (default: not "
        "checked; checking decodes the input's video).",
    )
    audio_silence_ms: int | None = Field(
        None,
        ge=500,
        le=60_000,
        description="An input silent (below -50 dB) this long is lost too (default: not checked; "
        "checking decodes the input's audio).",
    )
    slate_text: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="Text of the card shown when no input delivers (default: none, a black card).",
    )
    slate_image_url: str | None = Field(
        None,
        description="A PNG or JPEG (http or https, at most 10 MB) shown when no input delivers, "
        "fitted to the output's size over black, with slate_text over it; fetched by the node "
        "as the restream starts (one it cannot fetch: the black card, and a line in its log).",
    )

    @field_validator("slate_image_url")
    @classmethod
    def _image(cls, url: str | None) -> str | None:
        return None if not url else check_url(url, IMAGE_SCHEMES, "slate_image_url")

    def checks(self) -> dict[str, int]:
        """What a stage watches in its input besides its packets: {"black"|"frozen"|"silent":
        milliseconds} (empty: packets only)."""
        given = {
            "black": self.video_black_ms,
            "frozen": self.video_frozen_ms,
            "silent": self.audio_silence_ms,
        }
        return {what: ms for what, ms in given.items() if ms is not None}


def continuity_problems(
    primary: InputSpec, backup: InputSpec | None, transcoding: TranscodingSpec | None
) -> list[FieldProblem]:
    """Outputs kept across input switches are encoded from what is on air: the output's size,
    rate and codec must be known (a slate is made to them), and each input must be one a stage
    of its own can open (pulled, or a test signal)."""
    needed = {
        "transcoding.video_transcoding": transcoding
        and transcoding.video_transcoding in (VideoCodec.LIBX264, VideoCodec.LIBX265),
        "transcoding.frame_width": transcoding and transcoding.frame_width,
        "transcoding.frame_height": transcoding and transcoding.frame_height,
        "transcoding.filter_fps": transcoding and transcoding.filter_fps,
    }
    problems = [
        FieldProblem(field, "required with continuity (libx264 or libx265)")
        for field, given in needed.items()
        if not given
    ]
    problems += [
        FieldProblem(
            which,
            "with continuity an input is pulled from a URL or a test signal, "
            f"not {spec.input_type.value}",
        )
        for which, spec in (("input", primary), ("backup_input", backup))
        if spec is not None and spec.input_type not in CONTINUITY_INPUTS
    ]
    if transcoding is not None and transcoding.copy_when_source_is:
        problems.append(
            FieldProblem("transcoding.copy_when_source_is", "continuity encodes its outputs")
        )
    return problems
