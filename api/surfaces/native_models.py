"""The native surface's request and response bodies (`api.surfaces.native`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.errors import Problem
from common.definitions.continuity import ContinuitySpec
from common.definitions.restream import (
    InputSpec,
    Label,
    OutputSpec,
    TranscodingSpec,
)
from common.definitions.schedule import Schedule, ScheduleView
from common.definitions.states import NodeState, RestreamState
from common.live import RestreamStats


class ErrorDetail(BaseModel):
    code: str = Field(description="`invalid_input`, `not_found`, `conflict`, ...")
    message: str = Field(description="What went wrong, for an operator to act on.")
    problems: list[Problem]


class NativeError(BaseModel):
    """Every error of the native API."""

    error: ErrorDetail


NodeSelector = Annotated[
    dict[Label, list[Label]] | None,
    Field(
        description="Run only on nodes carrying, for each label, one of the values: "
        '{"region": ["eu-west"]}.'
    ),
]


Inputs = Annotated[
    list[InputSpec] | None,
    Field(
        min_length=1,
        max_length=2,
        description="[primary, backup]: instead of `input`, with a backup switched to when the "
        "primary stops delivering (continuity).",
    ),
]


EXAMPLE_RESTREAM: dict[str, Any] = {
    "name": "lobby camera to YouTube",
    "input": {"input_type": "INPUT_TYPE_RTMP_URL",
              "input_stream_url": "rtmp://camera.example/live/lobby"},
    "transcoding": {"video_transcoding": "libx264", "frame_width": 1280, "frame_height": 720,
                    "filter_fps": 30, "output_video_bitrate": 3000, "preset": "veryfast"},
    "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL",
                 "output_stream_url": "rtmp://a.rtmp.youtube.com/live2",
                 "output_stream_key": "xxxx-xxxx-xxxx-xxxx"}],
    "active": True,
}  # fmt: skip


class RestreamIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_RESTREAM]})
    name: str = Field(min_length=1, max_length=200)
    input: InputSpec | None = None
    inputs: Inputs = None
    continuity: ContinuitySpec | None = Field(
        None, description="Input loss, failback and the slate (a backup input implies it)."
    )
    transcoding: TranscodingSpec | None = None
    outputs: list[OutputSpec] = Field(min_length=1, max_length=16)
    node_selector: NodeSelector = None
    active: bool = Field(False, description="Start it right away.")
    schedule: Schedule | None = Field(
        None, description="Start it at a time, stop it at a time, or let runs last at most so long."
    )


class RestreamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    input: InputSpec | None = None
    inputs: Inputs = None
    continuity: ContinuitySpec | None = None
    transcoding: TranscodingSpec | None = None
    outputs: list[OutputSpec] | None = Field(None, min_length=1, max_length=16)
    node_selector: NodeSelector = None
    active: bool | None = None
    schedule: Schedule | None = Field(None, description="Replaces its schedule; null: none.")


class RestreamOut(BaseModel):
    id: str
    project_id: str
    name: str
    restream_type: str
    active: bool = Field(description="Desired: should it run.")
    state: RestreamState = Field(description="What it shows (README: Restream states).")
    state_reason: str | None
    last_error: str | None
    node: str | None
    generation: int = Field(description="Its runs so far: one more each time it is placed.")
    revision: int = Field(
        description="Its changes so far (its ETag): send it as If-Match with a PATCH."
    )
    ingest_url: str | None = Field(
        description="Where to publish, for a placed listen input (the node's address and port)."
    )
    input: dict[str, Any]
    inputs: list[dict[str, Any]] = Field(description="The input, then its backup if it has one.")
    continuity: dict[str, Any] | None
    transcoding: dict[str, Any] | None
    outputs: list[dict[str, Any]]
    node_selector: dict[str, list[str]] | None
    schedule: ScheduleView | None = Field(description="What is left of its schedule.")
    created_at: datetime
    modified_at: datetime
    state_changed_at: datetime


class RestreamPage(BaseModel):
    items: list[RestreamOut]
    total: int
    limit: int
    offset: int


class StatsOut(BaseModel):
    restream_id: str
    state: RestreamState
    live: RestreamStats | None = Field(description="From the running node; null if none.")
    playback: dict[str, str] = Field(
        default_factory=dict,
        description="Where viewers play its HLS and DASH outputs, by output id, while it runs.",
    )


class NodeOut(BaseModel):
    name: str
    state: NodeState
    live: bool = Field(description="Holds a lease right now.")
    address: str | None
    capabilities: dict[str, Any]
    running: int = Field(description="FFmpeg processes it reports.")
    lease_renewed_at: float | None
    lease_holder: str | None = Field(
        description="The worker process holding the lease, `host:pid:tag` (one per node name)."
    )
    capacity: dict[str, Any] = Field(
        description="What placement has reserved on it and what is free: CPU millicores, and "
        "XRM units per U30 device and engine."
    )


class EventOut(BaseModel):
    id: int
    at: datetime
    from_state: str | None
    to_state: str | None
    reason: str
    node: str | None
    generation: int | None
