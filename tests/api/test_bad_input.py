"""Bad input on every surface: refused in the surface's own shape, naming what is wrong, and a
refused request writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.db import Database
from common.models import Restream
from tests.support.nodes import simulate_node

FARM_ADMIN = Principal("tests", Role.ADMIN, None)
PLAIN: dict[str, Any] = {
    "name": "plain",
    "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
    "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5"}],
}
CALLABA_PLAIN: dict[str, Any] = {
    "restream_name": "callaba plain",
    "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
    "output": {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5"},
}


def escaped(body: dict[str, Any]) -> str:
    """JSON with every non-ASCII character escaped (a lone surrogate cannot be UTF-8)."""
    return json.dumps(body, ensure_ascii=True)


def names(db: Database) -> list[str]:
    with db.transaction() as session:
        return sorted(r.name for r in session.query(Restream))


def test_a_refused_change_keeps_nothing_of_itself(
    client: TestClient, bearer: dict[str, str], callaba: dict[str, str], db: Database
) -> None:
    restream = client.post("/v1/restreams", json=PLAIN, headers=bearer).json()["id"]
    unsupported = {"input_type": "INPUT_TYPE_SRT_SOFTWARE"}
    refused = client.patch(
        f"/v1/restreams/{restream}", json={"name": "renamed", "input": unsupported}, headers=bearer
    )
    assert refused.status_code == 422, refused.text
    local_file = {"input_type": "INPUT_TYPE_OTHER", "input_stream_url": "file:///etc/passwd"}
    refused = client.patch(
        f"/v1/restreams/{restream}", json={"name": "renamed", "input": local_file}, headers=bearer
    )
    assert refused.status_code == 422, refused.text

    created = client.post("/api/restream/create", json=CALLABA_PLAIN, headers=callaba).json()
    update = {
        **CALLABA_PLAIN,
        "id": created["id"],
        "restream_name": "renamed too",
        "input": {"input_type": "INPUT_TYPE_RTMP_HARDWARE"},
    }
    refused = client.post("/api/restream/update", json=update, headers=callaba)
    assert refused.status_code >= 400, refused.text
    assert names(db) == ["callaba plain", "plain"]


def test_a_refused_creation_leaves_no_row(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    listen = {
        **PLAIN,
        "input": {
            "input_type": "INPUT_TYPE_SRT_LISTEN",
            "input_stream_listen_port": {"port": 9000, "transport": "UDP"},
        },
        "active": True,
    }
    first = client.post("/v1/restreams", json={**listen, "name": "first"}, headers=bearer)
    assert first.status_code == 201, first.text
    taken = client.post("/v1/restreams", json={**listen, "name": "second"}, headers=bearer)
    assert taken.status_code == 409 and "port 9000/UDP is taken" in taken.text
    assert names(db) == ["first"]
    again = client.post("/v1/restreams", json={**listen, "name": "second"}, headers=bearer)
    assert "is taken" in again.json()["error"]["message"]  # not "name exists": nothing was kept


@pytest.mark.parametrize(
    "value",
    [-1, 0, 1e308, float("nan"), True, "-5"],
    ids=["negative", "zero", "huge", "nan", "bool", "dash"],
)
def test_key_frame_intervals_must_be_sensible(
    client: TestClient, bearer: dict[str, str], value: Any
) -> None:
    body = {**PLAIN, "transcoding": {"video_transcoding": "libx264", "force_key_frames": value}}
    refused = client.post(
        "/v1/restreams",
        content=json.dumps(body),  # NaN as JavaScript writes it
        headers={**bearer, "content-type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["problems"][0]["field"] == "transcoding.force_key_frames"
    assert client.get("/v1/restreams", headers=bearer).status_code == 200


@pytest.fixture
def project(db: Database) -> tuple[str, str]:
    """A project and an operator key of it."""
    with db.transaction() as session:
        created = projects.create(session, FARM_ADMIN, "p")
        _, key = create_api_key(session, "op", project_id=created.id, role=Role.OPERATOR)
    return created.id, key


def test_unstorable_characters_are_refused_on_every_surface(
    client: TestClient,
    bearer: dict[str, str],
    callaba: dict[str, str],
    project: tuple[str, str],
) -> None:
    project_id, key = project
    nul_key = {**PLAIN["outputs"][0], "output_stream_key": "a\x00b"}
    cases = [
        (client.get("/v1/restreams/%00", headers=bearer), 422, "path"),
        (client.post("/v1/restreams", json={**PLAIN, "outputs": [nul_key]}, headers=bearer),
         422, "outputs.0.output_stream_key"),
        (client.post("/v1/projects", content=escaped({"name": "\ud800"}), headers=bearer),
         422, "name"),
        (client.post("/api/restream/create", json={**CALLABA_PLAIN, "restream_name": "x\x00"},
                     headers=callaba), 400, "restream_name"),
        (client.post("/api/auth/login", content=escaped({"email": "a@b.c", "password": "\udfff"})),
         400, "password"),
        (client.get(f"/api/v1/{project_id}/live-videos/%00", headers={"Authorization": key}),
         400, "path"),
        (client.post(f"/api/v1/{project_id}/live-videos", json={"title": "t\x00"},
                     headers={"Authorization": key}), 400, "title"),
        (client.post("/v2/streams/restream/new", content="name=a%00%2Fb&url=rtmp://h/a/b",
                     headers={"X-API-Key": key,
                              "content-type": "application/x-www-form-urlencoded"}),
         400, "name"),
    ]  # fmt: skip
    for response, status, field in cases:
        assert response.status_code == status, response.text
        assert "NUL character or an unpaired surrogate" in response.text
        assert field in response.text, response.text


def test_malformed_urls_ids_offsets_and_bodies_are_refused_not_crashed_on(
    client: TestClient, bearer: dict[str, str], project: tuple[str, str]
) -> None:
    project_id, key = project
    gjirafa = {"Authorization": key}
    video = client.post(f"/api/v1/{project_id}/live-videos", json={"title": "v"}, headers=gjirafa)
    video_id = video.json()["result"]["id"]
    bad_url = client.post(
        f"/api/v1/{project_id}/restreams",
        json={"videoId": video_id, "title": "d", "streamUrl": "rtmp://[bad/x", "status": False},
        headers=gjirafa,
    )
    assert bad_url.status_code == 400 and "streamUrl: not a valid URL" in bad_url.text
    for odd in ("%C2%B2", "%E2%91%A0"):  # "²" and "①" are digits to str.isdigit
        gone = client.get(f"/api/v1/{project_id}/restreams/{odd}", headers=gjirafa)
        assert gone.status_code == 404, gone.text
    huge = client.get("/v1/restreams?offset=9223372036854775808", headers=bearer)
    assert huge.status_code == 422 and huge.json()["error"]["problems"][0]["field"] == "offset"
    number = client.post(
        "/v1/restreams", content='{"name": ' + "1" * 5000 + "}", headers=bearer
    )  # more digits than Python parses
    assert number.status_code == 422, number.text
    latin1 = client.post("/v1/restreams", content=b'{"name": "\xff"}', headers=bearer)
    assert latin1.status_code == 422 and "not UTF-8" in latin1.text
    selector = client.post(
        "/v1/restreams", json={**PLAIN, "node_selector": {"region": []}}, headers=bearer
    )
    assert selector.status_code == 422 and "node_selector" in selector.text
    listen = {"input_type": "INPUT_TYPE_RTMP_LISTEN", "input_stream_listen_port": {"port": 1935}}
    probe_a_listener = client.post(
        "/v1/restreams",
        json={**PLAIN, "input": listen, "transcoding": {"copy_when_source_is": "h264"}},
        headers=bearer,
    )
    assert probe_a_listener.status_code == 422
    assert "copy_when_source_is needs an input pulled from a URL" in probe_a_listener.text
    ingest = client.post(
        f"/api/v1/{project_id}/live-videos",
        json={"title": "v", "transcoding": {"copy_when_source_is": "h264"}},
        headers=gjirafa,
    )
    assert ingest.status_code == 400 and "copy_when_source_is" in ingest.text


def test_unknown_paths_answer_in_the_surfaces_shape(
    client: TestClient, bearer: dict[str, str], project: tuple[str, str]
) -> None:
    project_id, key = project
    native = client.get("/v1/nothing-here", headers=bearer)
    assert native.status_code == 404 and native.json()["error"]["code"] == "not_found"
    callaba = client.post("/api/restream/nothing")
    assert callaba.status_code == 404 and callaba.json()["success"] is False
    gjirafa = client.get(f"/api/v1/{project_id}/nothing", headers={"Authorization": key})
    assert gjirafa.status_code == 404 and gjirafa.json()["errors"] == ["Result Not Found"]
    wrong_verb = client.delete(f"/api/v1/{project_id}/live-videos", headers={"Authorization": key})
    assert wrong_verb.status_code == 400 and wrong_verb.json()["statusCode"] == 400
    cdn = client.get("/v2/streams/restream/1/nothing", headers={"X-API-Key": key})
    assert cdn.status_code == 404 and cdn.json()["result"] == "error"
    assert client.get("/elsewhere").json() == {"detail": "Not Found"}


TRAVERSALS = ["../../victim", "../../../victim2", "a/b", "..", "0123456789abcdef0123456/"]


@pytest.mark.parametrize("output_id", TRAVERSALS)
def test_output_ids_that_are_not_plain_ids_are_refused(
    client: TestClient, bearer: dict[str, str], callaba: dict[str, str], output_id: str
) -> None:
    """An output's id names its HLS/DASH directory on the node: `../` once emptied and
    filled a directory outside the media directory. Refused on entry, naming the field."""
    hls = {"output_type": "OUTPUT_TYPE_HLS"}
    body = {**PLAIN, "outputs": [hls, {**hls, "id": output_id}], "active": True}
    native = client.post("/v1/restreams", json=body, headers=bearer)
    assert native.status_code == 422, native.text
    assert native.json()["error"]["problems"][0]["field"] == "outputs.1.id"
    created = client.post("/api/restream/create", json={**CALLABA_PLAIN, "active": False},
                          headers=callaba).json()  # fmt: skip
    update = {"id": created["id"], "output": [hls, {**hls, "id": output_id}]}
    callaba_answer = client.post("/api/restream/update", json=update, headers=callaba)
    assert callaba_answer.status_code == 400, callaba_answer.text
    assert callaba_answer.json()["errors"][0]["field"] == "output.1.id"
    stored = client.post("/api/restream/getById", json={"id": created["id"]}, headers=callaba)
    assert stored.json()["output"][0]["output_type"] == "OUTPUT_TYPE_UDP_URL"


def test_output_ids_are_random_and_distinct(client: TestClient, bearer: dict[str, str]) -> None:
    """Given ids are kept; two outputs of one id are refused; the farm's own are random, so
    a playback path cannot be guessed from a restream's id."""
    given = "0123456789abcdef01234567"
    hls = {"output_type": "OUTPUT_TYPE_HLS"}
    twice = {**PLAIN, "outputs": [{**hls, "id": given}, {**hls, "id": given.upper()}]}
    refused = client.post("/v1/restreams", json=twice, headers=bearer)
    assert refused.status_code == 422 and "outputs 0 and 1 have the same id" in refused.text
    created = client.post(
        "/v1/restreams", json={**PLAIN, "outputs": [{**hls, "id": given}, hls, hls]},
        headers=bearer,
    ).json()  # fmt: skip
    ids = [output["id"] for output in created["outputs"]]
    assert ids[0] == given
    assert len(set(ids)) == 3 and all(len(i) == 24 for i in ids)
    # A new_id() shares the restream id's time and process bytes; a random one does not.
    assert all(i[4:18] != created["id"][4:18] for i in ids[1:])


def test_deep_big_and_long_requests_are_refused_in_each_surfaces_shape(
    client: TestClient, bearer: dict[str, str], callaba: dict[str, str], project: tuple[str, str]
) -> None:
    """Limits: JSON nested deeper than 32 levels (1,000 deep was a RecursionError: 500), a
    body over 1 MiB (20 MB bodies were read whole), a URL over 8 KiB."""
    project_id, key = project
    deep = '{"a": ' * 1000 + "1" + "}" * 1000
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    long_path = "/v1/restreams/" + "a" * 9000
    cases = [
        ("/v1/restreams", deep, bearer, 422, ("error", "message"), "nests deeper than 32"),
        ("/api/restream/create", deep, callaba, 400, ("message",), "nests deeper than 32"),
        (f"/api/v1/{project_id}/live-videos", deep, {"Authorization": key}, 400,
         ("messages", 0), "nests deeper than 32"),
        ("/v2/streams/restream/new", deep, {"X-API-Key": key}, 400, ("message",),
         "nests deeper than 32"),
        ("/v1/restreams", big, bearer, 413, ("error", "message"), "at most 1048576"),
        ("/api/restream/create", big, callaba, 413, ("message",), "at most 1048576"),
        (f"/api/v1/{project_id}/live-videos", big, {"Authorization": key}, 413,
         ("messages", 0), "at most 1048576"),
    ]  # fmt: skip
    for path, body, headers, status, where, text in cases:
        assert isinstance(body, str | bytes)
        answer = client.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert answer.status_code == status, (path, answer.text[:300])
        found: Any = answer.json()
        for part in where:
            found = found[part]
        assert text in found, (path, found)
    chunks = (b"x" * 65536 for _ in range(20))  # chunked: no Content-Length to go by
    streamed = client.post("/v1/restreams", content=chunks, headers=bearer)
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "too_large"
    too_long = client.get(long_path, headers=bearer)
    assert too_long.status_code == 414 and too_long.json()["error"]["code"] == "too_large"
    form = "&".join(f"a{'[x]' * 40}={i}" for i in range(2))
    cdn_form = client.post(
        "/v2/streams/restream/new",
        content=form,
        headers={"X-API-Key": key, "content-type": "application/x-www-form-urlencoded"},
    )
    assert cdn_form.status_code == 400 and "nests deeper" in cdn_form.text
    assert client.get("/v1/restreams", headers=bearer).status_code == 200


def test_a_stream_url_longer_than_4096_characters_is_refused(
    client: TestClient, bearer: dict[str, str]
) -> None:
    """A 140,000-character URL was stored, then retried forever: 'Argument list too long'."""
    url = "rtmp://src/live/" + "a" * 140_000
    body = {**PLAIN, "input": {**PLAIN["input"], "input_stream_url": url}}
    refused = client.post("/v1/restreams", json=body, headers=bearer)
    assert refused.status_code == 422
    problem = refused.json()["error"]["problems"][0]
    assert problem["field"] == "input" and "at most 4096" in problem["message"]
