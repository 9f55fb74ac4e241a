"""What a restream is: one input, an optional transcode, one or more outputs.

The vocabulary is the Callaba Engine restream API's (input_type, output_stream_url, ...),
because it is the product's: every surface maps onto these models and nothing else.
Clients send numbers as strings and "Disabled" for "not set"; both are accepted here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from common.definitions.checks import blank_to_none, check_entity_id, check_url
from common.definitions.continuity import ContinuitySpec, continuity_problems
from common.definitions.kinds import (
    FARM_OUTPUTS,
    FILE_OUTPUTS,
    INPUT_SCHEMES,
    KEYED_INPUTS,
    LISTEN_INPUTS,
    MAX_KEY_FRAME_INTERVAL_S,
    MAX_LABEL_LENGTH,
    OUTPUT_SCHEMES,
    AudioCodec,
    InputType,
    OutputType,
    PixFmt,
    Preset,
    Tune,
    VideoCodec,
)
from common.errors import InvalidInput


class _Lenient(BaseModel):
    """Accepts the habits of real clients: unknown keys are ignored, numbers may be strings."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, use_enum_values=False)


class ListenPort(_Lenient):
    port: int = Field(ge=1, le=65535, description="Port the node listens on.")
    transport: Literal["UDP", "TCP"] | None = Field(
        None, description="UDP for SRT and UDP listeners, TCP otherwise (inferred if absent)."
    )

    @field_validator("transport", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class InputSpec(_Lenient):
    """The live input of a restream."""

    id: str | None = Field(None, description="Identifier of this input (assigned when created).")
    input_type: InputType = Field(description="Where the stream comes from.")
    input_stream_url: str | None = Field(None, description="URL to pull from (URL types).")
    input_stream_listen_port: ListenPort | None = Field(
        None, description="Port to listen on (listen types)."
    )
    input_server_id: str | None = Field(
        None,
        max_length=MAX_LABEL_LENGTH,
        validation_alias=AliasChoices("input_server_id", "input_module_id"),
        description="Server module id (server-module types; `input_module_id` also accepted).",
    )
    input_stream_id: str | None = Field(
        None, max_length=MAX_LABEL_LENGTH, description="Stream of the server module."
    )
    module_type: str | None = Field(
        None,
        max_length=MAX_LABEL_LENGTH,
        validation_alias=AliasChoices("module_type", "module_name"),
        description="Free label of the producing module (`module_name` also accepted).",
    )
    entity_name: str | None = Field(
        None, max_length=MAX_LABEL_LENGTH, description="Free label of the producing entity."
    )
    input_stream_key: str | None = Field(
        None,
        min_length=10,
        max_length=79,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="RTMP, RTSP and SRT listen inputs: the stream key a publisher must use "
        "(RTMP and RTSP: the last part of the ingest URL; SRT: its passphrase).",
    )
    input_relay_id: str | None = Field(
        None,
        max_length=MAX_LABEL_LENGTH,
        description="INPUT_TYPE_RELAY: the restream whose relay feeds this one.",
    )
    input_video_codec: Literal["h264", "hevc"] | None = Field(
        None,
        description="Codec of the incoming video, for decoding on a U30 card (default h264).",
    )
    encoding_rate: int = Field(24, ge=1, le=120, description="Test video: frames per second.")
    sound_hz: int = Field(216, ge=1, le=20000, description="Test video: sine tone, in hertz.")
    resolution_width: int = Field(1920, ge=16, le=7680, description="Test video: width.")
    resolution_height: int = Field(1080, ge=16, le=4320, description="Test video: height.")
    video_duration_sec: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="Test video: length in seconds."
    )
    test_video_bitrate: int = Field(
        6000, ge=16, le=100_000, description="Test video: bitrate in kbit/s."
    )

    _id = field_validator("id", mode="before")(check_entity_id)

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v == "")}
        return data

    @model_validator(mode="after")
    def _fields_of_type(self) -> InputSpec:
        listen = self.input_stream_listen_port
        if (
            self.input_type is InputType.SRT_URL
            and listen is not None
            and not self.input_stream_url
        ):
            # The Callaba doc's own listen example says INPUT_TYPE_SRT_URL with a port.
            self.input_type = InputType.SRT_LISTEN
        schemes = INPUT_SCHEMES.get(self.input_type)
        if schemes is not None:
            if not self.input_stream_url:
                raise ValueError(f"input_stream_url is required for {self.input_type.value}")
            self.input_stream_url = check_url(self.input_stream_url, schemes, "input_stream_url")
        if self.input_stream_key is not None and self.input_type not in KEYED_INPUTS:
            raise ValueError(
                "input_stream_key is for "
                + ", ".join(sorted(t.value for t in KEYED_INPUTS))
                + f", not {self.input_type.value}"
            )
        if self.input_type is InputType.RELAY and not self.input_relay_id:
            raise ValueError("input_relay_id is required for INPUT_TYPE_RELAY")
        transport = LISTEN_INPUTS.get(self.input_type)
        if transport is not None:
            if listen is None:
                raise ValueError(
                    f"input_stream_listen_port {{port, transport}} is required for "
                    f"{self.input_type.value}"
                )
            if listen.transport is None:
                listen.transport = transport  # type: ignore[assignment]
            elif listen.transport != transport:
                raise ValueError(
                    f"{self.input_type.value} listens on {transport}, not {listen.transport}"
                )
        return self


class TranscodingSpec(_Lenient):
    """How to re-encode. Every field is optional; an absent codec means stream copy."""

    video_transcoding: VideoCodec | None = Field(
        None, description="Output video codec; absent or Disabled = copy the input's video."
    )
    output_video_bitrate: int | None = Field(
        None, ge=16, le=200_000, description="Video bitrate, kbit/s."
    )
    force_key_frames: str | None = Field(
        None,
        max_length=MAX_LABEL_LENGTH,
        description="Key frame every N seconds (a number) or an FFmpeg force_key_frames "
        "expression such as `expr:gte(t,n_forced*2)`.",
    )
    gop: int | None = Field(None, ge=1, le=1000, description="Frames between key frames.")
    frame_width: int | None = Field(
        None,
        ge=16,
        le=7680,
        validation_alias=AliasChoices("frame_width", "width"),
        description="Output width in pixels.",
    )
    frame_height: int | None = Field(
        None,
        ge=16,
        le=4320,
        validation_alias=AliasChoices("frame_height", "height"),
        description="Output height in pixels.",
    )
    preset: Preset | None = Field(None, description="Encoder preset.")
    tune: Tune | None = Field(None, description="Encoder tuning.")
    crf: int | None = Field(None, ge=0, le=51, description="Constant quality, 0 (lossless)-51.")
    pix_fmt: PixFmt | None = Field(None, description="Output pixel format.")
    filter_fps: float | None = Field(
        None, gt=0, le=240, description="Output frame rate, applied by a filter."
    )
    audio_transcoding: AudioCodec | None = Field(
        None,
        validation_alias=AliasChoices("audio_transcoding", "audio_trancoding"),
        description="Output audio codec (`audio_trancoding` also accepted); absent = copy.",
    )
    output_audio_bitrate: int | None = Field(
        None, ge=8, le=1024, description="Audio bitrate, kbit/s."
    )
    sample_rate: int | None = Field(None, ge=8000, le=192_000, description="Audio sample rate, Hz.")
    copy_when_source_is: Literal["h264", "hevc"] | None = Field(
        None,
        description="Copy the video instead when the source's codec is this one (found by "
        "probing the source before each start); else encode with video_transcoding.",
    )
    audio_sync: bool | None = Field(
        None,
        description="Resample the audio to the timestamps (fixes drift of pulled sources); "
        "encodes the audio (aac unless audio_transcoding says otherwise).",
    )
    slices: int | None = Field(None, ge=0, le=68, description="U30 encoder slices, 0-68.")
    cores: int | None = Field(None, ge=0, le=4, description="U30 encoder cores, 0-4.")

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        cleaned = {k: blank_to_none(v) for k, v in data.items()}
        preset = cleaned.get("preset")
        if isinstance(preset, str):
            cleaned["preset"] = preset.replace(" ", "").lower()  # the doc writes "very fast"
        return {k: v for k, v in cleaned.items() if v is not None}

    @field_validator("force_key_frames", mode="before")
    @classmethod
    def _key_frames(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("force_key_frames must be seconds or an expression, not true/false")
        if isinstance(value, int | float):
            if not math.isfinite(value) or value <= 0 or value > MAX_KEY_FRAME_INTERVAL_S:
                raise ValueError(
                    f"force_key_frames in seconds must be above 0 and at most "
                    f"{MAX_KEY_FRAME_INTERVAL_S}"
                )
            return format(value, "g")
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("-") or any(ch in value for ch in " \n\r\t"):
                raise ValueError("force_key_frames must be seconds or an expression without spaces")
        return value


class OutputSpec(_Lenient):
    """One live destination."""

    id: str | None = Field(None, description="Identifier of this output (assigned when created).")
    output_type: OutputType = Field(description="Kind of destination.")
    output_stream_url: str | None = Field(
        None,
        description="Where to deliver the stream (not for the node's own RTMP server or HLS).",
    )
    output_stream_key: str | None = Field(
        None, max_length=1024, description="Stream key, appended to the URL (RTMP only)."
    )

    _id = field_validator("id", mode="before")(check_entity_id)

    @model_validator(mode="after")
    def _url(self) -> OutputSpec:
        if self.output_type in (*FILE_OUTPUTS, OutputType.RELAY):
            self.output_stream_url = None
        elif self.output_stream_url:
            schemes = OUTPUT_SCHEMES[self.output_type]
            self.output_stream_url = check_url(self.output_stream_url, schemes, "output_stream_url")
        elif self.output_type not in FARM_OUTPUTS:
            raise ValueError(f"output_stream_url is required for {self.output_type.value}")
        if self.output_stream_key is not None:
            key = self.output_stream_key.strip()
            if not key or key.startswith("-") or any(ch in key for ch in " \n\r\t|"):
                raise ValueError("output_stream_key must be a single word")
            self.output_stream_key = key
        return self

    def target_url(self, base: str | None = None) -> str:
        """The URL FFmpeg publishes to: the stream key, if any, appended as the last segment.
        `base` stands in for a URL the farm decides (the node's own RTMP server)."""
        url = self.output_stream_url or base
        if url is None:
            raise ValueError(f"{self.output_type.value} has no URL")
        if not self.output_stream_key:
            return url
        return url.rstrip("/") + "/" + self.output_stream_key


RestreamName = Annotated[str, Field(min_length=1, max_length=200)]
Label = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*)$")
]


class RestreamDefinition(_Lenient):
    """Everything needed to run a restream, as stored in `restreams.definition`."""

    input: InputSpec
    backup_input: InputSpec | None = Field(
        None, description="Switched to when the input stops delivering (continuity)."
    )
    continuity: ContinuitySpec | None = Field(
        None,
        description="Keep the outputs alive across input loss: a backup input, else a slate. "
        "Implied by backup_input.",
    )
    transcoding: TranscodingSpec | None = None
    outputs: list[OutputSpec] = Field(min_length=1, max_length=16)
    node_selector: dict[Label, list[Label]] | None = Field(
        None,
        description="Run only on nodes whose label has one of the values, for every label "
        'given, e.g. {"region": ["eu-west", "eu-north"]}.',
    )

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        if any(not values for values in value.values()):
            raise ValueError("every label of node_selector needs at least one value")
        return {key: sorted(set(values)) for key, values in sorted(value.items())} or None

    @field_validator("transcoding", mode="before")
    @classmethod
    def _no_transcoding(cls, value: Any) -> Any:
        return None if isinstance(value, str) and blank_to_none(value) is None else value

    @field_validator("outputs")
    @classmethod
    def _distinct_ids(cls, outputs: list[OutputSpec]) -> list[OutputSpec]:
        """Two outputs of one id would write into one directory."""
        seen: dict[str, int] = {}
        for index, output in enumerate(outputs):
            if output.id is None:
                continue
            if output.id in seen:
                raise ValueError(f"outputs {seen[output.id]} and {index} have the same id")
            seen[output.id] = index
        return outputs

    @model_validator(mode="after")
    def _probe_only_pulls(self) -> RestreamDefinition:
        """Deciding copy or encode opens the source once before the restream does: only a pull
        can be opened twice (a listen port would take the publisher away; a test signal or a
        relay has a known codec)."""
        pulled = self.input.input_stream_url is not None and self.input.input_type not in (
            *LISTEN_INPUTS,
            InputType.RELAY,
        )
        if self.transcoding and self.transcoding.copy_when_source_is and not pulled:
            raise ValueError(
                "transcoding.copy_when_source_is needs an input pulled from a URL "
                f"(not {self.input.input_type.value})"
            )
        return self

    @model_validator(mode="after")
    def _continuity(self) -> RestreamDefinition:
        """See `continuity_problems`: refused as the farm's own error, naming each field."""
        if self.backup_input is None and self.continuity is None:
            return self
        if self.continuity is None:
            self.continuity = ContinuitySpec()
        problems = continuity_problems(self.input, self.backup_input, self.transcoding)
        if problems:
            summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
            raise InvalidInput(
                f"continuity (a backup input or a slate) encodes what is on air: {summary}",
                problems,
            )
        return self

    def restream_type(self) -> str:
        """Callaba's RESTREAM_TYPE_<IN>_TO_<OUT> label, derived from the input and first output."""
        return restream_type(self.input.input_type.value, self.outputs[0].output_type.value)


def restream_type(input_type: str, first_output_type: str) -> str:
    """Callaba's RESTREAM_TYPE_<IN>_TO_<OUT> label of an input type and an output type."""
    source = _family(input_type, "INPUT_TYPE_")
    target = _family(first_output_type, "OUTPUT_TYPE_")
    return f"RESTREAM_TYPE_{source}_TO_{target}"


def _family(type_value: str, prefix: str) -> str:
    family = type_value.removeprefix(prefix)
    for suffix in ("_SOFTWARE", "_HARDWARE", "_LISTEN", "_URL"):
        family = family.removesuffix(suffix)
    family = family.removeprefix("LOCAL_").removeprefix("OTHER_")
    return {"GENERATE_TEST_VIDEO": "TEST_VIDEO", "MPEG_DASH": "DASH"}.get(family, family)
