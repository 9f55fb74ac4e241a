"""Validation of restream definitions: the habits of real clients, and clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition, TranscodingSpec

RTMP_OUT = {"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": "rtmp://x/live"}


def problems(model: type[Any], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in caught.value.errors()]


def test_audio_spelling_of_the_doc_and_the_correct_one() -> None:
    assert TranscodingSpec.model_validate({"audio_trancoding": "aac"}).audio_transcoding == "aac"
    assert TranscodingSpec.model_validate({"audio_transcoding": "mp3"}).audio_transcoding == "mp3"


def test_numbers_as_strings_and_disabled_values() -> None:
    spec = TranscodingSpec.model_validate(
        {
            "video_transcoding": "Disabled",
            "output_video_bitrate": "4000",
            "crf": "20",
            "preset": "very fast",
            "tune": "Disabled",
            "pix_fmt": "Disable",
            "gop": "",
        }
    )
    assert spec.video_transcoding is None
    assert (spec.output_video_bitrate, spec.crf, spec.preset) == (4000, 20, "veryfast")
    assert spec.tune is None and spec.pix_fmt is None and spec.gop is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"crf": 52}, "crf: Input should be less than or equal to 51"),
        ({"slices": 69}, "slices: Input should be less than or equal to 68"),
        ({"cores": 5}, "cores: Input should be less than or equal to 4"),
        ({"video_transcoding": "libx263"}, "video_transcoding: Input should be 'libx264', "
         "'libx265', 'mpsoc_vcu_h264' or 'mpsoc_vcu_hevc'"),
        ({"audio_trancoding": "opus"}, "audio_trancoding: Input should be 'aac' or 'mp3'"),
        ({"output_video_bitrate": "fast"}, "output_video_bitrate: Input should be a valid integer"),
        ({"force_key_frames": "-i /etc/passwd"}, "force_key_frames: Value error, "
         "force_key_frames must be seconds or an expression without spaces"),
    ],
)  # fmt: skip
def test_transcoding_refusals_name_field_and_allowed_values(
    data: dict[str, Any], expected: str
) -> None:
    assert expected in problems(TranscodingSpec, data)[0]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"input_type": "INPUT_TYPE_RTMP_URL"}, "input_stream_url is required"),
        ({"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "file:///etc/passwd"},
         "input_stream_url scheme must be one of rtmp, rtmps (got 'file')"),
        ({"input_type": "INPUT_TYPE_OTHER", "input_stream_url": "concat:a.ts|b.ts"},
         "scheme must be one of"),
        ({"input_type": "INPUT_TYPE_HLS_URL", "input_stream_url": "-f lavfi"},
         "must be a URL, not an option"),
        ({"input_type": "INPUT_TYPE_SRT_LISTEN"}, "input_stream_listen_port {port, transport}"),
        ({"input_type": "INPUT_TYPE_RTMP"}, "Input should be 'INPUT_TYPE_SRT_SOFTWARE'"),
        ({"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "encoding_rate": 0},
         "encoding_rate: Input should be greater than or equal to 1"),
        ({"input_type": "INPUT_TYPE_UDP_LISTEN", "input_stream_listen_port": {"port": 5000},
          "input_stream_key": "0123456789"},
         "input_stream_key is for INPUT_TYPE_RTMP_LISTEN, INPUT_TYPE_RTSP_LISTEN, "
         "INPUT_TYPE_SRT_LISTEN, not INPUT_TYPE_UDP_LISTEN"),
        ({"input_type": "INPUT_TYPE_RTMP_LISTEN", "input_stream_listen_port": {"port": 1935},
          "input_stream_key": "short"},
         "input_stream_key: String should have at least 10 characters"),
        ({"input_type": "INPUT_TYPE_RTMP_LISTEN", "input_stream_listen_port": {"port": 1935},
          "input_stream_key": "../../etc/passwd"},
         "input_stream_key: String should match pattern"),
        ({"input_type": "INPUT_TYPE_RELAY"}, "input_relay_id is required for INPUT_TYPE_RELAY"),
    ],
)  # fmt: skip
def test_input_refusals(data: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in problems(InputSpec, data)), problems(InputSpec, data)


def test_server_module_inputs_are_accepted_by_the_schema() -> None:
    spec = InputSpec.model_validate(
        {
            "input_type": "INPUT_TYPE_SRT_SOFTWARE",
            "input_module_id": "62275f1bccaa650032da2b53",
            "input_stream_id": "publisher/srt-server-name/srt-stream-01",
            "module_name": "srt server",
        }
    )
    assert spec.input_server_id == "62275f1bccaa650032da2b53"
    assert spec.module_type == "srt server"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"output_type": "OUTPUT_TYPE_SRT_URL"}, "output_stream_url is required for OUTPUT_TYPE_SRT_URL"),
        ({"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": "rtmp://x"},
         "scheme must be one of srt"),
        ({**RTMP_OUT, "output_stream_key": "a b"}, "output_stream_key must be a single word"),
        ({"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1 -f x"},
         "must not contain spaces"),
    ],
)  # fmt: skip
def test_output_refusals(data: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in problems(OutputSpec, data)), problems(OutputSpec, data)


def test_restream_type_is_derived_from_input_and_first_output() -> None:
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://h:1"},
            "outputs": [RTMP_OUT],
        }
    )
    assert definition.restream_type() == "RESTREAM_TYPE_SRT_TO_RTMP"
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
        }
    )
    assert definition.restream_type() == "RESTREAM_TYPE_TEST_VIDEO_TO_UDP"
