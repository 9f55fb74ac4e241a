"""The Gjirafa VP surface: live videos, their destinations, the envelope and its status codes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from api.app import create_app
from common import live
from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.celery_app import TASK_RESTREAM_START, TASK_RESTREAM_STOP
from common.config import Settings
from common.db import Database
from common.ffmpeg.outcome import Outcome
from common.lifecycle import reports, service
from common.lifecycle.reports import Attempt
from common.lifecycle.service import Farm
from common.vendors import gjirafa as videos
from tests.support.nodes import simulate_node

FARM_ADMIN = Principal("tests", Role.ADMIN, None)
ENVELOPE_KEYS = {"success", "errors", "messages", "result", "resultInfo", "statusCode"}


@dataclass(frozen=True)
class Project:
    id: str
    keys: dict[str, str]  # role -> key

    def headers(self, role: str = "operator") -> dict[str, str]:
        return {"Authorization": self.keys[role]}

    def path(self, rest: str) -> str:
        return f"/api/v1/{self.id}{rest}"


def make_project(db: Database, name: str) -> Project:
    with db.transaction() as session:
        project = projects.create(session, FARM_ADMIN, name)
        keys = {
            role.value: create_api_key(session, f"{name} {role}", project_id=project.id, role=role)[
                1
            ]
            for role in Role
        }
    return Project(project.id, keys)


@pytest.fixture
def acme(db: Database) -> Project:
    return make_project(db, "acme")


@pytest.fixture
def rival(db: Database) -> Project:
    return make_project(db, "rival")


def answer(response: Any, status: int) -> Any:
    """The envelope's result, after checking the envelope and its status."""
    body = response.json()
    assert response.status_code == status, body
    assert set(body) == ENVELOPE_KEYS
    assert body["statusCode"] == status and body["success"] is (status < 400)
    return body["result"]


def error(response: Any, status: int) -> tuple[list[str], list[str]]:
    answer(response, status)
    body = response.json()
    assert body["result"] is None
    return body["errors"], body["messages"]


def live_video(client: TestClient, project: Project, **body: Any) -> dict[str, Any]:
    response = client.post(
        project.path("/live-videos"), json={"title": "Match", **body}, headers=project.headers()
    )
    result: dict[str, Any] = answer(response, 201)
    return result


def destination(client: TestClient, project: Project, video_id: str, **body: Any) -> dict[str, Any]:
    fields = {
        "videoId": video_id,
        "title": "YouTube",
        "streamUrl": "rtmp://a.rtmp.youtube.com/live2",
        "streamKey": "abcd-efgh-ijkl",
        "status": True,
        **body,
    }
    response = client.post(project.path("/restreams"), json=fields, headers=project.headers())
    result: dict[str, Any] = answer(response, 201)
    return result


def test_a_live_video_is_an_ingest_with_a_generated_key_on_a_port_of_the_range(
    client: TestClient, acme: Project, db: Database, redis_client: redis.Redis
) -> None:
    waiting = live_video(client, acme)
    assert (waiting["title"], waiting["status"], waiting["state"]) == ("Match", True, "pending")
    assert waiting["ingest"]["protocol"] == "rtmp" and len(waiting["ingest"]["streamKey"]) >= 32
    assert waiting["ingest"]["url"] is None  # not placed: no node yet

    simulate_node(db, redis_client, "n1")
    placed = live_video(client, acme, ingestProtocol="srt")
    key = placed["ingest"]["streamKey"]
    assert placed["state"] == "starting" and placed["node"] == "n1"
    assert placed["ingest"] == {
        "protocol": "srt",
        "url": "srt://127.0.0.1:30001",
        "streamKey": key,
        "publishUrl": f"srt://127.0.0.1:30001?passphrase={key}&pbkeylen=16",
    }
    assert key != waiting["ingest"]["streamKey"]
    shown = answer(
        client.get(acme.path(f"/live-videos/{placed['id']}"), headers=acme.headers()), 200
    )
    assert shown == placed

    rtmp = live_video(client, acme, title="Match")  # titles may repeat
    assert rtmp["ingest"]["url"] == "rtmp://127.0.0.1:30002/live"
    assert (
        rtmp["ingest"]["publishUrl"] == f"rtmp://127.0.0.1:30002/live/{rtmp['ingest']['streamKey']}"
    )
    listed = answer(client.get(acme.path("/live-videos"), headers=acme.headers()), 200)
    assert [v["id"] for v in listed] == [waiting["id"], placed["id"], rtmp["id"]]


def test_transcoding_is_optional_and_in_the_callaba_vocabulary(
    client: TestClient, acme: Project
) -> None:
    video = live_video(
        client, acme, transcoding={"video_transcoding": "libx264", "output_video_bitrate": "2500"}
    )
    assert video["transcoding"] == {"video_transcoding": "libx264", "output_video_bitrate": 2500}
    assert live_video(client, acme)["transcoding"] is None


def test_destinations_are_added_listed_toggled_and_deleted(
    client: TestClient, acme: Project
) -> None:
    video = live_video(client, acme)
    youtube = destination(client, acme, video["id"])
    twitch = destination(client, acme, video["id"], title="Twitch", status=False)
    assert isinstance(youtube["id"], int) and twitch["id"] > youtube["id"]
    assert (youtube["videoId"], youtube["status"], twitch["status"]) == (video["id"], True, False)
    assert youtube["state"] == "pending" and twitch["state"] == "idle"
    keyless = destination(
        client, acme, video["id"], title="Own", streamUrl="udp://10.0.0.9:5000", streamKey=""
    )
    assert keyless["streamKey"] is None  # an empty key is no key
    client.delete(acme.path(f"/restreams/{keyless['id']}"), headers=acme.headers())

    def listed() -> list[tuple[int, str, bool]]:
        rows = answer(
            client.get(acme.path(f"/live-video/{video['id']}/restreams"), headers=acme.headers()),
            200,
        )
        return [(r["id"], r["title"], r["status"]) for r in rows]

    assert listed() == [(youtube["id"], "YouTube", True), (twitch["id"], "Twitch", False)]

    def toggle(number: int) -> Any:
        return answer(
            client.put(acme.path(f"/restreams/{number}/toggle"), headers=acme.headers()), 200
        )

    assert toggle(youtube["id"]) == {"id": youtube["id"], "status": False}
    assert toggle(twitch["id"]) == {"id": twitch["id"], "status": True}
    assert listed() == [(youtube["id"], "YouTube", False), (twitch["id"], "Twitch", True)]
    assert toggle(youtube["id"]) == {"id": youtube["id"], "status": True}

    deleted = client.delete(acme.path(f"/restreams/{youtube['id']}"), headers=acme.headers())
    assert answer(deleted, 200) is None
    assert listed() == [(twitch["id"], "Twitch", True)]
    errors, _ = error(
        client.put(acme.path(f"/restreams/{youtube['id']}/toggle"), headers=acme.headers()), 404
    )
    assert errors == ["Result Not Found"]

    gone = client.delete(acme.path(f"/live-videos/{video['id']}"), headers=acme.headers())
    answer(gone, 200)
    error(client.get(acme.path(f"/restreams/{twitch['id']}"), headers=acme.headers()), 404)


def test_a_toggle_starts_and_stops_that_destination_alone(
    *,
    client: TestClient,
    acme: Project,
    db: Database,
    redis_client: redis.Redis,
    sent: list[Any],
    settings: Settings,
) -> None:
    simulate_node(db, redis_client, "n1")
    video = live_video(client, acme)
    one = destination(client, acme, video["id"])
    two = destination(client, acme, video["id"], title="Two")
    assert {one["state"], two["state"]} == {"starting"}  # placed with the video, on n1
    with db.transaction() as session:
        first = videos.destination(session, FARM_ADMIN, one["id"]).id
    sent.clear()
    client.put(acme.path(f"/restreams/{one['id']}/toggle"), headers=acme.headers())
    assert [(m.task, m.kwargs["restream_id"]) for m in sent] == [(TASK_RESTREAM_STOP, first)]
    sent.clear()
    # On again before its FFmpeg has exited: it waits for that, never runs twice.
    client.put(acme.path(f"/restreams/{one['id']}/toggle"), headers=acme.headers())
    assert sent == []
    with db.transaction() as session:  # the worker reports the exit; placed again (the reconciler)
        moving = reports.apply(
            session, Attempt(first, 1, "n1"), reports.Ended(outcome=Outcome.STOPPED, exit_code=0)
        )
        assert moving is not None
        service.place_now(session, Farm(redis_client, settings), moving)
    assert [(m.task, m.kwargs["restream_id"]) for m in sent] == [(TASK_RESTREAM_START, first)]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"title": "x", "streamUrl": "ftp://example.com/live"},
         "streamUrl: streamUrl scheme must be one of http, https, rtmp, rtmps, rtsp, rtsps, srt, "
         "udp (got 'ftp')"),
        ({"title": "x", "streamUrl": "rtmp://example.com/live", "streamKey": "two words"},
         "streamKey: output_stream_key must be a single word"),
        ({"streamUrl": "rtmp://example.com/live"}, "title: Field required"),
        ({"title": "x", "streamUrl": "rtmp://x/live", "status": "maybe"},
         "status: Input should be a valid boolean"),
    ],
)  # fmt: skip
def test_bad_destinations_are_400_naming_the_field(
    client: TestClient, acme: Project, body: dict[str, Any], detail: str
) -> None:
    video = live_video(client, acme)
    response = client.post(
        acme.path("/restreams"), json={"videoId": video["id"], **body}, headers=acme.headers()
    )
    errors, _ = error(response, 400)
    assert errors[0] == "Bad Request" and any(e.startswith(detail) for e in errors[1:]), errors


def test_bad_live_videos_are_400(client: TestClient, acme: Project) -> None:
    for body, detail in [
        ({}, "title: Field required"),
        (
            {"title": "x", "ingestProtocol": "webrtc"},
            "ingestProtocol: Input should be 'rtmp' or 'srt'",
        ),
        (
            {"title": "x", "transcoding": {"video_transcoding": "vp9"}},
            "transcoding.video_transcoding",
        ),
    ]:
        response = client.post(acme.path("/live-videos"), json=body, headers=acme.headers())
        errors, _ = error(response, 400)
        assert any(e.startswith(detail) for e in errors), errors
    not_json = client.post(
        acme.path("/live-videos"),
        content=b"{",
        headers={**acme.headers(), "content-type": "application/json"},
    )
    error(not_json, 400)


def test_the_port_range_is_shared_and_its_end_is_a_clear_error(
    settings: Settings, db: Database, redis_client: redis.Redis, acme: Project, rival: Project
) -> None:
    simulate_node(db, redis_client, "n1")
    narrow = settings.model_copy(update={"live_video_ports": "41000-41001"})

    def port(video: dict[str, Any]) -> int:
        return int(video["ingest"]["url"].rsplit(":", 1)[1].removesuffix("/live"))

    with TestClient(create_app(narrow, db=db)) as client:
        first, second = live_video(client, acme), live_video(client, rival)
        assert (port(first), port(second)) == (41000, 41001)  # one range for every project
        response = client.post(
            acme.path("/live-videos"), json={"title": "x"}, headers=acme.headers()
        )
        _, messages = error(response, 400)
        assert "every port of STREAMFLEET_LIVE_VIDEO_PORTS (41000-41001) is taken" in messages[0]
        client.delete(acme.path(f"/live-videos/{first['id']}"), headers=acme.headers())
        assert port(live_video(client, acme)) == 41000  # free again


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization: <api key>"),
        ({"Authorization": "   "}, "missing Authorization: <api key>"),
        ({"Authorization": "sf_000000000000_nope"}, "unknown or revoked API key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid or expired token"),
    ],
)
def test_no_valid_key_is_401(
    client: TestClient, acme: Project, headers: dict[str, str], message: str
) -> None:
    errors, messages = error(client.get(acme.path("/live-videos"), headers=headers), 401)
    assert errors == ["Unauthorized"] and messages[0].startswith(message)


def test_a_key_is_taken_as_is_or_after_bearer(client: TestClient, acme: Project) -> None:
    key = acme.keys["viewer"]
    for value in (key, f"Bearer {key}", f"bearer {key}"):
        answer(client.get(acme.path("/live-videos"), headers={"Authorization": value}), 200)


def test_a_key_of_another_project_is_403_whether_it_exists_or_not(
    client: TestClient, acme: Project, rival: Project
) -> None:
    for project_id in (rival.id, "0" * 24):
        response = client.get(f"/api/v1/{project_id}/live-videos", headers=acme.headers())
        errors, messages = error(response, 403)
        assert errors == ["Forbidden"] and messages == ["this key belongs to another project"]


def test_viewers_read_and_change_nothing(client: TestClient, acme: Project) -> None:
    video = live_video(client, acme)
    one = destination(client, acme, video["id"])
    viewer = acme.headers("viewer")
    answer(client.get(acme.path(f"/live-videos/{video['id']}"), headers=viewer), 200)
    for verb, path, body in [
        ("POST", "/live-videos", {"title": "x"}),
        ("DELETE", f"/live-videos/{video['id']}", None),
        ("POST", "/restreams", {"videoId": video["id"], "title": "x", "streamUrl": "rtmp://x/a"}),
        ("PUT", f"/restreams/{one['id']}/toggle", None),
        ("DELETE", f"/restreams/{one['id']}", None),
    ]:
        response = client.request(verb, acme.path(path), json=body, headers=viewer)
        errors, _ = error(response, 403)
        assert errors == ["Forbidden"], (verb, path)
    assert destination(client, acme, video["id"])["status"] is True  # the operator still can


def test_a_farm_admin_acts_in_any_existing_project(
    client: TestClient, acme: Project, bearer: dict[str, str]
) -> None:
    video = answer(client.post(acme.path("/live-videos"), json={"title": "x"}, headers=bearer), 201)
    mine = answer(client.get(acme.path("/live-videos"), headers=acme.headers("viewer")), 200)
    assert [v["id"] for v in mine] == [video["id"]]
    errors, _ = error(client.get(f"/api/v1/{'0' * 24}/live-videos", headers=bearer), 404)
    assert errors == ["Result Not Found"]


def test_unknown_ids_are_404_result_not_found(client: TestClient, acme: Project) -> None:
    video = live_video(client, acme)
    for verb, path in [
        ("GET", f"/live-videos/{'0' * 24}"),
        ("GET", "/live-video/nope/restreams"),
        ("PUT", "/restreams/999999/toggle"),
        ("PUT", "/restreams/abc/toggle"),
        ("DELETE", "/restreams/-1"),
        ("GET", f"/live-videos/{video['id']}x"),
    ]:
        errors, _ = error(client.request(verb, acme.path(path), headers=acme.headers()), 404)
        assert errors == ["Result Not Found"], (verb, path)
    missing = client.post(
        acme.path("/restreams"),
        json={"videoId": "0" * 24, "title": "x", "streamUrl": "rtmp://x/a"},
        headers=acme.headers(),
    )
    assert error(missing, 404)[0] == ["Result Not Found"]


def test_a_restream_that_is_no_live_video_is_not_one_here(
    client: TestClient, acme: Project
) -> None:
    plain = {
        "name": "plain",
        "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
        "outputs": [{"output_type": "OUTPUT_TYPE_RELAY"}],
    }
    headers = {"Authorization": f"Bearer {acme.keys['operator']}"}
    restream_id = client.post("/v1/restreams", json=plain, headers=headers).json()["id"]
    error(client.get(acme.path(f"/live-videos/{restream_id}"), headers=acme.headers()), 404)


def test_an_unexpected_failure_is_500_in_the_envelope(
    client: TestClient, acme: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(videos, "all_videos", broken)
    errors, messages = error(client.get(acme.path("/live-videos"), headers=acme.headers()), 500)
    assert errors == ["Internal Server Error"] and messages == ["internal error"]


@pytest.fixture
def unreachable_client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db)) as client:
        yield client


def test_an_unreachable_broker_is_503_backend_fetch_failed(
    unreachable_client: TestClient, acme: Project, db: Database, redis_client: redis.Redis
) -> None:
    """A start needs the nodes' leases (reads alone go on from PostgreSQL without Redis)."""
    simulate_node(db, redis_client, "n1")
    state = unreachable_client.app.state.streamfleet  # type: ignore[attr-defined]
    state.redis = live.connect("redis://127.0.0.1:9/0")
    response = unreachable_client.post(
        acme.path("/live-videos"), json={"title": "x"}, headers=acme.headers()
    )
    errors, messages = error(response, 503)
    assert errors == ["Backend Fetch Failed"] and messages == ["Redis is unreachable"]


def test_an_unreachable_database_is_503_backend_fetch_failed(
    unreachable_client: TestClient, acme: Project, sent: list[Any]
) -> None:
    state = unreachable_client.app.state.streamfleet  # type: ignore[attr-defined]
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    state.db = Database(engine, sent.append)
    response = unreachable_client.get(acme.path("/live-videos"), headers=acme.headers())
    errors, messages = error(response, 503)
    assert errors == ["Backend Fetch Failed"] and messages == ["the database is unreachable"]
    engine.dispose()
