"""Continuity on the native surface: `inputs: [primary, backup]` and `continuity`, given,
shown, changed; refused naming the field when the restream could not keep its outputs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

PRIMARY = {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://a.example/live/1"}
BACKUP = {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://b.example:9000"}
ENCODED = {
    "video_transcoding": "libx264",
    "frame_width": 640,
    "frame_height": 360,
    "filter_fps": 25,
}
BODY: dict[str, Any] = {
    "name": "kept",
    "inputs": [PRIMARY, BACKUP],
    "transcoding": ENCODED,
    "outputs": [{"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": "rtmp://c/d"}],
}


def post(client: TestClient, bearer: dict[str, str], **changes: Any) -> Any:
    return client.post("/v1/restreams", json={**BODY, **changes}, headers=bearer)


def test_a_backup_input_is_kept_and_shown(client: TestClient, bearer: dict[str, str]) -> None:
    made = post(client, bearer)
    assert made.status_code == 201, made.text
    body = made.json()
    assert [i["input_stream_url"] for i in body["inputs"]] == [
        PRIMARY["input_stream_url"], BACKUP["input_stream_url"],
    ]  # fmt: skip
    assert body["input"]["input_stream_url"] == PRIMARY["input_stream_url"]
    assert body["continuity"] == {
        "input_loss_ms": 1000, "failback_s": 30, "failback": True, "slate_text": None,
        "video_black_ms": None, "video_frozen_ms": None, "audio_silence_ms": None,
        "slate_image_url": None,
    }  # fmt: skip
    url = f"/v1/restreams/{body['id']}"
    wanted = {
        "input_loss_ms": 500, "failback": False, "video_black_ms": 2000, "audio_silence_ms": 3000,
        "slate_image_url": "https://img.example/slate.png",
    }  # fmt: skip
    changed = client.patch(url, json={"continuity": wanted}, headers=bearer).json()
    assert changed["continuity"] == {
        **wanted, "failback_s": 30, "slate_text": None, "video_frozen_ms": None,
    }  # fmt: skip
    assert len(changed["inputs"]) == 2  # kept
    new_primary = {**PRIMARY, "input_stream_url": "rtmp://a.example/live/2"}
    moved = client.patch(url, json={"input": new_primary}, headers=bearer).json()
    assert [i["input_stream_url"] for i in moved["inputs"]] == [
        "rtmp://a.example/live/2", BACKUP["input_stream_url"],
    ]  # fmt: skip
    alone = client.patch(url, json={"inputs": [PRIMARY]}, headers=bearer).json()
    assert len(alone["inputs"]) == 1 and alone["continuity"] is not None  # a slate still


def test_a_slate_alone_needs_no_backup(client: TestClient, bearer: dict[str, str]) -> None:
    made = post(client, bearer, inputs=None, input=PRIMARY, continuity={"slate_text": "Soon"})
    assert made.status_code == 201, made.text
    assert len(made.json()["inputs"]) == 1 and made.json()["continuity"]["slate_text"] == "Soon"


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"transcoding": None}, ["transcoding.video_transcoding", "transcoding.frame_width",
                                 "transcoding.frame_height", "transcoding.filter_fps"]),
        ({"transcoding": {**ENCODED, "frame_width": None}}, ["transcoding.frame_width"]),
        ({"transcoding": {**ENCODED, "video_transcoding": "mpsoc_vcu_h264"}},
         ["transcoding.video_transcoding"]),
        ({"inputs": [PRIMARY, {"input_type": "INPUT_TYPE_RTMP_LISTEN",
                               "input_stream_listen_port": {"port": 1935}}]}, ["backup_input"]),
        ({"input": PRIMARY}, ["inputs"]),
        ({"inputs": []}, ["inputs"]),
        ({"inputs": [PRIMARY, BACKUP, BACKUP]}, ["inputs"]),
        ({"inputs": None}, ["input"]),
        ({"continuity": {"input_loss_ms": 50}}, ["continuity.input_loss_ms"]),
        ({"continuity": {"slate_text": "two\nlines"}}, ["continuity.slate_text"]),
        ({"continuity": {"video_black_ms": 100}}, ["continuity.video_black_ms"]),
        ({"continuity": {"video_frozen_ms": 600_000}}, ["continuity.video_frozen_ms"]),
        ({"continuity": {"audio_silence_ms": "x"}}, ["continuity.audio_silence_ms"]),
        ({"continuity": {"slate_image_url": "file:///etc/passwd"}},
         ["continuity.slate_image_url"]),
        ({"continuity": {"slate_image_url": "-i http://a/b.png"}},
         ["continuity.slate_image_url"]),
    ],
)  # fmt: skip
def test_what_cannot_be_kept_alive_is_refused_naming_the_field(
    client: TestClient, bearer: dict[str, str], changes: dict[str, Any], fields: list[str]
) -> None:
    refused = post(client, bearer, **changes)
    assert refused.status_code == 422, refused.text
    named = [p["field"] for p in refused.json()["error"]["problems"]]
    assert all(any(n.startswith(f) for n in named) for f in fields), named
    assert client.get("/v1/restreams", headers=bearer).json()["total"] == 0


def test_callabas_input_list_is_the_input_and_its_backup(
    client: TestClient, callaba: dict[str, str]
) -> None:
    """The Callaba document keeps `input` a list for several inputs: the second is the backup."""
    body = {
        "restream_name": "kept on Callaba",
        "input": [PRIMARY, BACKUP],
        "transcoding": ENCODED,
        "output": {"output_type": "OUTPUT_TYPE_SRT_URL", "output_stream_url": "srt://c:2035"},
        "active": False,
    }
    made = client.post("/api/restream/create", json=body, headers=callaba)
    assert made.status_code == 200, made.text
    found = client.post("/api/restream/getById", json={"id": made.json()["id"]}, headers=callaba)
    assert [i["input_stream_url"] for i in found.json()["input"]] == [
        PRIMARY["input_stream_url"], BACKUP["input_stream_url"],
    ]  # fmt: skip
    three = client.post(
        "/api/restream/create",
        json={**body, "restream_name": "three", "input": [PRIMARY, BACKUP, BACKUP]},
        headers=callaba,
    )
    assert three.status_code == 422 and "the input and its backup" in three.text
    bare = client.post(
        "/api/restream/create",
        json={**body, "restream_name": "bare", "transcoding": None},
        headers=callaba,
    )
    assert bare.status_code == 400 and "transcoding.frame_width" in bare.text
