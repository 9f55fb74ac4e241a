"""The 5centsCDN surface: pull streams, their platforms, regions, and the vendor's envelopes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from api.surfaces.fivecents.requests import unflatten
from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.celery_app import TASK_RESTREAM_START, TASK_RESTREAM_STOP
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import RestreamState
from common.ffmpeg.outcome import Outcome
from common.lifecycle import reports
from common.lifecycle.reports import Attempt
from common.lifecycle.service import Farm, place_now
from common.models import Restream
from tests.support.nodes import Offers, simulate_node
from tests.support.ratelimits import within_one_window

# The request body of the curl example in 5centsCDN's "Update Pull Stream" document, verbatim.
SEED_BODY = {
    "restreamtype": "mediaserver",
    "codec": "h265",
    "server[mediaserver]": "11,211",
    "protocols": ["RTSP", "HLS"],
    "url[mediaserver][]": "rtmp://fms-01-01.5centscdn.com",
    "mode[mediaserver]": "rtmp",
    "audiofix": "Y",
    "draft": "0",
    "platformtype": "",
}
NEW = {"name": "logotest/james", "url[mediaserver][]": "rtmp://src.example.com/live/in"}
NORTH_AMERICA = Offers(
    labels={"region": "north-america", "server": "11"},
    local_rtsp_url="rtsp://127.0.0.1:8554/live",
    playback_base_url="https://na-1.example.com",
    address="198.51.100.11",
)


@pytest.fixture
def api(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The API without the vendor's rate limit (tested on its own below)."""
    unlimited = settings.model_copy(update={"cdn_api_requests_per_s": 0})
    with TestClient(create_app(unlimited, db=db)) as client:
        yield client


def key_of(db: Database, role: Role = Role.OPERATOR, name: str = "tv") -> dict[str, str]:
    with db.transaction() as session:
        project = projects.create(session, Principal("tests", Role.ADMIN, None), name)
        _, key = create_api_key(session, name, project_id=project.id, role=role)
    return {"X-API-Key": key}


@pytest.fixture
def key(db: Database) -> dict[str, str]:
    return key_of(db)


@pytest.fixture
def farm_nodes(db: Database, redis_client: redis.Redis) -> None:
    """Three nodes: servers 11 and 211 in North America, 209 in Oceania."""
    simulate_node(db, redis_client, "na-1", offers=NORTH_AMERICA)
    na2 = Offers(labels={"region": "north-america", "server": "211"})
    simulate_node(db, redis_client, "na-2", offers=na2)
    simulate_node(
        db, redis_client, "oc-1", offers=Offers(labels={"region": "oceania", "server": "209"})
    )


def ok(response: Any, message: str) -> dict[str, Any]:
    body = response.json()
    assert response.status_code == 200, body
    assert (body["result"], body["message"]) == ("success", message), body
    stream: dict[str, Any] = body["stream"]
    return stream


def create(api: TestClient, key: dict[str, str], **body: Any) -> dict[str, Any]:
    return ok(
        api.post("/v2/streams/restream/new", json={**NEW, **body}, headers=key), "Stream Created"
    )


def exited(db: Database, farm: Farm, number: int) -> None:
    """What the worker reports once the FFmpeg of a stopping restream is gone."""
    with db.transaction() as session:
        row = session.query(Restream).filter_by(number=number).one()
        assert row.state is RestreamState.STOPPING and row.node_name is not None
        attempt = Attempt(row.id, row.generation, row.node_name)
        moving = reports.apply(
            session, attempt, reports.Ended(outcome=Outcome.STOPPED, exit_code=0)
        )
        if moving is not None:  # still wanted: placed again, as the reconciler does next
            place_now(session, farm, moving)


@pytest.fixture
def farm(settings: Settings, redis_client: redis.Redis) -> Farm:
    return Farm(redis_client, settings)


def definition(db: Database, number: int) -> dict[str, Any]:
    with db.transaction() as session:
        row = session.query(Restream).filter_by(number=number).one()
        return dict(row.definition)


def test_the_seed_body_updates_a_stream(
    api: TestClient, key: dict[str, str], db: Database, farm_nodes: None
) -> None:
    created = create(api, key, draft="1")
    assert (created["status"], created["draft"]) == ("Draft", "1")
    stream = ok(
        api.post(f"/v2/streams/restream/{created['id']}", json=SEED_BODY, headers=key),
        "Stream Updated",
    )
    assert stream["id"] == created["id"] and stream["type"] == "restream"
    assert (stream["codec"], stream["server"], stream["draft"]) == ("h265", "11,211", "0")
    assert stream["protocols"] == [["RTSP", "HLS"]]
    assert stream["has"] == {"rtmp": 0, "rtsp": 1, "hls": 1, "dash": 0, "rtmpauth": False}
    assert stream["parts"] == {"pp": "logotest", "sn": "james", "full": "logotestjames"}
    assert stream["restream"] == {
        "type": "mediaserver",
        "mode": "rtmp",
        "urls": ["rtmp://fms-01-01.5centscdn.com"],
        "staticip": "N",
        "audiofix": "Y",
        "server": {"country": "north-america"},
    }
    assert stream["geoblock"]["enabled"] == "N" and stream["securetoken"]["active"] == "N"
    # Published: placed on the one node of servers 11/211 with an RTSP server.
    assert stream["status"] == "Deploying" and stream["node"] == "na-1"
    playback = stream["playbackurls"]
    assert playback["hls"].startswith("https://na-1.example.com/live/")
    assert playback["hls"].endswith("/index.m3u8") and playback["dash"] is None
    # The node's RTSP server listens on loopback: viewers reach it at the node's address.
    assert playback["rtsp"] == "rtsp://198.51.100.11:8554/live/logotestjames"
    assert stream["ssl_enabled"] is True  # its playback base is https

    ran = definition(db, created["id"])
    assert (ran["input"]["input_type"], ran["input"]["input_stream_url"]) == (
        "INPUT_TYPE_RTMP_URL",
        "rtmp://fms-01-01.5centscdn.com",
    )
    assert ran["transcoding"] == {
        "video_transcoding": "libx265",
        "preset": "ultrafast",
        "copy_when_source_is": "hevc",
        "audio_sync": True,
    }
    assert [o["output_type"] for o in ran["outputs"]] == [
        "OUTPUT_TYPE_RELAY", "OUTPUT_TYPE_LOCAL_RTSP_URL", "OUTPUT_TYPE_HLS",
    ]  # fmt: skip
    assert ran["node_selector"] == {"server": ["11", "211"]}


def test_bodies_nested_flat_and_form_encoded_mean_the_same(
    api: TestClient, key: dict[str, str], db: Database, farm_nodes: None
) -> None:
    flat = create(api, key, **{"server[mediaserver]": "209", "draft": "1"})
    nested = create(
        api,
        key,
        name="logotest/nested",
        url={"mediaserver": ["rtmp://src.example.com/live/in"]},
        server={"mediaserver": "209"},
        draft=1,
    )
    form = ok(
        api.post(
            "/v2/streams/restream/new",
            content="name=logotest%2Fform&url%5Bmediaserver%5D%5B%5D=rtmp%3A%2F%2Fsrc.example.com"
            "%2Flive%2Fin&server%5Bmediaserver%5D=209&draft=1&protocols=HLS%2CDASH",
            headers={**key, "content-type": "application/x-www-form-urlencoded"},
        ),
        "Stream Created",
    )
    put = create(api, key, name="logotest/put", _METHOD="PUT", draft="1", server="209")
    for stream in (flat, nested, form, put):
        assert stream["restream"]["urls"] == ["rtmp://src.example.com/live/in"]
        assert stream["server"] == "209" and stream["restream"]["server"]["country"] == "oceania"
        assert definition(db, stream["id"])["node_selector"] == {"server": ["209"]}
    assert form["protocols"] == [["HLS", "DASH"]]


def test_draft_publish_disable_delete_restore_restart(
    *,
    api: TestClient,
    key: dict[str, str],
    farm_nodes: None,
    sent: list[Any],
    db: Database,
    farm: Farm,
) -> None:
    def tasks() -> list[str]:
        found = [m.task for m in sent]
        sent.clear()
        return found

    draft = create(api, key, draft="1")
    number = draft["id"]
    assert (draft["status"], draft["state"]) == ("Draft", "idle") and tasks() == []
    published = ok(
        api.post(f"/v2/streams/restream/{number}", json={"draft": "0"}, headers=key),
        "Stream Updated",
    )
    assert published["status"] == "Deploying" and tasks() == [TASK_RESTREAM_START]

    status = f"/v2/streams/restream/{number}/status"
    off = ok(api.post(status, json={"disabled": 1}, headers=key), "Stream Disabled")
    assert (off["status"], off["disabled"]) == ("Disabled", "1") and tasks() == [TASK_RESTREAM_STOP]
    refused = api.get(f"/v2/streams/restream/{number}/restart", headers=key)
    assert refused.status_code == 400 and "is disabled" in refused.json()["message"]
    on = ok(api.post(status, json={"disabled": "0"}, headers=key), "Stream Enabled")
    # Enabled before its FFmpeg had exited: it starts once that has, not beside it.
    assert on["status"] == "Deploying" and tasks() == []
    exited(db, farm, number)
    assert tasks() == [TASK_RESTREAM_START]

    restarted = ok(
        api.get(f"/v2/streams/restream/{number}/restart", headers=key), "Stream Restarted"
    )
    assert restarted["state"] == "stopping" and tasks() == [TASK_RESTREAM_STOP]
    exited(db, farm, number)
    assert tasks() == [TASK_RESTREAM_START]

    deleted = ok(api.delete(f"/v2/streams/restream/{number}", headers=key), "Stream Deleted")
    assert deleted["status"] == "Deleted" and deleted["deleted"] is not None
    assert TASK_RESTREAM_STOP in tasks()
    listed = api.get("/v2/streams/restream", headers=key).json()
    assert [(s["id"], s["status"]) for s in listed["streams"]] == [(number, "Deleted")]
    exited(db, farm, number)
    restored = ok(api.get(f"/v2/streams/restream/{number}/restore", headers=key), "Stream Restored")
    assert (restored["status"], restored["deleted"]) == ("Deploying", None)
    assert tasks() == [TASK_RESTREAM_START]
    # _METHOD DELETE on the update route is the same soft delete.
    again = api.post(f"/v2/streams/restream/{number}", json={"_METHOD": "DELETE"}, headers=key)
    assert ok(again, "Stream Deleted")["status"] == "Deleted"


def test_platforms_are_added_updated_toggled_and_restarted(
    *,
    api: TestClient,
    key: dict[str, str],
    farm_nodes: None,
    sent: list[Any],
    db: Database,
    farm: Farm,
) -> None:
    number = create(api, key)["id"]
    added = ok(
        api.post(
            f"/v2/streams/restream/{number}/platforms",
            json={
                "platform[name]": "picarto",
                "platform[rtmp]": "rtmp://live.us.picarto.tv/golive",
                "platform[key]": "lll",
            },
            headers=key,
        ),
        "Platform Created",
    )
    assert added["platformsCount"] == 1
    platform = added["platforms"][0]
    assert (platform["name"], platform["rtmp"], platform["key"]) == (
        "picarto", "rtmp://live.us.picarto.tv/golive", "lll",
    )  # fmt: skip
    assert (platform["relid"], platform["disabled"], platform["isSRT"]) == (number, "0", False)
    pid = platform["id"]
    srt = ok(
        api.post(
            f"/v2/streams/restream/{number}/platforms",
            json={
                "platform": {"name": "srt", "rtmp": "srt://ingest.example.com:9000", "key": "k1"}
            },
            headers=key,
        ),
        "Platform Created",
    )["platforms"][1]
    assert srt["isSRT"] is True

    updated = ok(
        api.post(
            f"/v2/streams/restream/{number}/platform/{pid}",
            json={"platform[key]": "new"},
            headers=key,
        ),
        "Platform Updated",
    )
    assert updated["platforms"][0]["key"] == "new"

    sent.clear()
    off = api.post(
        f"/v2/streams/restream/{number}/platform/{pid}/status", json={"disabled": "1"}, headers=key
    )
    assert ok(off, "Platform Disabled")["platforms"][0]["disabled"] == "1"
    exited(db, farm, pid)
    refused = api.get(f"/v2/streams/restream/{number}/platform/{pid}/restart", headers=key)
    assert refused.status_code == 400
    on = api.post(
        f"/v2/streams/restream/{number}/platform/{pid}/status", json={"disabled": 0}, headers=key
    )
    assert ok(on, "Platform Enabled")["platforms"][0]["disabled"] == "0"
    restart = api.get(f"/v2/streams/restream/{number}/platform/{pid}/restart", headers=key)
    assert ok(restart, "Platform Restarted")["platforms"][0]["state"] == "stopping"
    exited(db, farm, pid)

    # Disabling the stream stops its platforms; enabling it starts those not disabled.
    api.post(
        f"/v2/streams/restream/{number}/platform/{srt['id']}/status",
        json={"disabled": 1},
        headers=key,
    )
    stopped = api.post(f"/v2/streams/restream/{number}/status", json={"disabled": 1}, headers=key)
    assert {p["state"] for p in ok(stopped, "Stream Disabled")["platforms"]} <= {"idle", "stopping"}
    enabled = ok(
        api.post(f"/v2/streams/restream/{number}/status", json={"disabled": 0}, headers=key),
        "Stream Enabled",
    )
    states = {p["id"]: p["state"] for p in enabled["platforms"]}
    assert states[srt["id"]] in ("idle", "stopping") and states[pid] == "stopping"
    exited(db, farm, pid)  # its FFmpeg gone, it starts again; the disabled one does not
    platforms = ok(api.get(f"/v2/streams/restream/{number}", headers=key), "Stream Found")
    states = {p["id"]: p["state"] for p in platforms["platforms"]}
    assert states[pid] in ("starting", "pending") and states[srt["id"]] in ("idle", "stopping")


def test_statistics_say_dead_until_it_runs(api: TestClient, key: dict[str, str]) -> None:
    number = create(api, key, draft="1")["id"]
    stats = api.get(f"/v2/streams/restream/{number}/statistics", headers=key).json()
    assert stats["result"] == "success"
    assert (stats["statistics"]["fs"]["status"], stats["statistics"]["fs"]["bitrate"]) == (
        "Dead",
        0,
    )


def test_servers_are_the_farms_labelled_nodes(
    api: TestClient, key: dict[str, str], farm_nodes: None
) -> None:
    servers = api.get("/v2/streams/restream/servers", headers=key).json()["servers"]
    assert [(s["id"], s["country"], s["nodes"]) for s in servers] == [
        ("11", "north-america", ["na-1"]),
        ("209", "oceania", ["oc-1"]),
        ("211", "north-america", ["na-2"]),
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"server[mediaserver]": "999"}, "unknown server 999"),
        ({"protocols": ["RTMP"]}, "RTMP playback needs a node with its own RTMP server"),
        ({"protocols": ["RTSP"], "server[mediaserver]": "209"},
         "RTSP playback needs a node of the selected servers"),
        ({"codec": "vp9"}, "codec: Input should be 'h264' or 'h265'"),
        ({"mode[mediaserver]": "ftp"}, "mode must be one of rtmp, hls, http"),
        ({"url[mediaserver][]": "file:///etc/passwd", "mode[mediaserver]": "rtmp"},
         "scheme must be one of rtmp, rtmps"),
        ({"protocols": ["WEBRTC"]}, "protocols.0: Input should be 'HLS', 'DASH', 'RTMP' or 'RTSP'"),
        ({"geoblock[enabled]": "Y"}, "geoblock: geoblocking is a feature of a CDN's edge"),
        ({"securetoken": {"enabled": "Y"}}, "securetoken: secure tokens"),
        ({"ndvr": {"enabled": "Y"}}, "ndvr: nDVR"),
        ({"adInsertion": {"active": "Y"}}, "adInsertion: ad insertion"),
    ],
)  # fmt: skip
def test_refusals_say_why(
    api: TestClient, key: dict[str, str], farm_nodes: None, body: dict[str, Any], words: str
) -> None:
    response = api.post("/v2/streams/restream/new", json={**NEW, **body}, headers=key)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["result"] == "error" and words in answer["message"], answer


@pytest.mark.parametrize(
    ("off", "on"),
    [
        ({"geoblock": {"enabled": "N"}}, {"geoblock": {"enabled": "Y"}}),
        ({"domainlock[enabled]": "N"}, {"domainlock[enabled]": "Y"}),
        ({"record": None}, {"record": {"enabled": "Y"}}),
    ],
)
def test_cdn_features_switched_off_are_accepted_on_refused(
    api: TestClient, key: dict[str, str], off: dict[str, Any], on: dict[str, Any]
) -> None:
    """The same request, the feature off: a stream; on: refused, nothing created."""
    created = create(api, key, draft="1", **off)
    assert api.get(f"/v2/streams/restream/{created['id']}", headers=key).status_code == 200
    refused = api.post("/v2/streams/restream/new", json={**NEW, "draft": "1", **on}, headers=key)
    assert refused.status_code == 400, refused.text
    listed = api.get("/v2/streams/restream", headers=key).json()["streams"]
    assert [s["id"] for s in listed] == [created["id"]]


def test_missing_and_unknown(api: TestClient, key: dict[str, str]) -> None:
    missing = api.post("/v2/streams/restream/new", json={"name": "a/b"}, headers=key)
    assert missing.status_code == 400 and missing.json()["message"] == "missing url"
    for path in ("/v2/streams/restream/999999", "/v2/streams/restream/abc"):
        gone = api.get(path, headers=key)
        assert gone.status_code == 404 and gone.json()["result"] == "error"
    plain = api.post(
        "/v2/streams/restream/new", content=b"x", headers={**key, "content-type": "application/xml"}
    )
    assert plain.status_code == 400 and "send JSON" in plain.json()["message"]


def test_authentication_answers_in_the_vendors_shape(
    api: TestClient, db: Database, key: dict[str, str]
) -> None:
    missing = api.get("/v2/streams/restream")
    assert missing.status_code == 401
    assert missing.json() == {
        "status": "error",
        "errors": [{"code": 401, "message": "API key is missing: send it in the X-API-Key header"}],
    }
    wrong = api.get("/v2/streams/restream", headers={"x-api-key": "sf_000000000000_nope"})
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["message"] == "Invalid API key"
    viewer = key_of(db, Role.VIEWER, "viewers")
    refused = api.post("/v2/streams/restream/new", json=NEW, headers=viewer)
    assert refused.status_code == 403 and refused.json()["status"] == "error"
    assert refused.json()["errors"][0]["code"] == 403
    # Another project's stream is not found.
    number = create(api, key, draft="1")["id"]
    other = key_of(db, Role.OPERATOR, "others")
    assert api.get(f"/v2/streams/restream/{number}", headers=other).status_code == 404
    assert api.get("/v2/streams/restream", headers=other).json()["streams"] == []


def test_more_than_five_requests_a_second_are_429(
    settings: Settings, db: Database, key: dict[str, str], redis_client: redis.Redis
) -> None:
    with TestClient(create_app(settings, db=db)) as api:
        answers = within_one_window(
            lambda _: api.get("/v2/streams/restream", headers=key),
            7,
            window_s=1.0,
            client=redis_client,
            prefix="ratelimit:v2",
            what="the /v2 limit",
        )
        assert [a.status_code for a in answers] == [200] * 5 + [429, 429]
        refused = answers[-1]
        assert refused.json() == {
            "status": "error",
            "errors": [
                {"code": 429, "message": "Too many requests: at most 5 a second per API key"}
            ],
        }
        assert refused.headers["retry-after"] == "1"
        # Per key: another key is not held back.
        assert api.get("/v2/streams/restream", headers=key_of(db, name="other")).status_code == 200


def test_the_limit_is_shared_by_every_api_replica(
    settings: Settings, db: Database, key: dict[str, str], redis_client: redis.Redis
) -> None:
    with (
        TestClient(create_app(settings, db=db)) as one,
        TestClient(create_app(settings, db=db)) as two,
    ):
        answers = within_one_window(
            lambda i: (one if i % 2 else two).get("/v2/streams/restream", headers=key),
            6,
            window_s=1.0,
            client=redis_client,
            prefix="ratelimit:v2",
            what="the /v2 limit",
        )
    assert [a.status_code for a in answers] == [200] * 5 + [429]


def test_native_restreams_take_a_node_selector(
    api: TestClient, bearer: dict[str, str], farm_nodes: None
) -> None:
    body = {
        "name": "selected",
        "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/a"},
        "outputs": [
            {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:5"}
        ],
        "node_selector": {"region": ["oceania"]},
        "active": True,
    }
    created = api.post("/v1/restreams", json=body, headers=bearer)
    assert created.status_code == 201, created.text
    assert (created.json()["node"], created.json()["node_selector"]) == (
        "oc-1",
        {"region": ["oceania"]},
    )
    nowhere = api.post(
        "/v1/restreams",
        json={**body, "name": "nowhere", "node_selector": {"region": ["mars"]}},
        headers=bearer,
    ).json()
    assert nowhere["state"] == "pending"
    assert nowhere["state_reason"] == "no live node matches its node selector: region in (mars)"


@pytest.mark.parametrize(
    ("pairs", "nested"),
    [
        ([("server[mediaserver]", "11,211")], {"server": {"mediaserver": "11,211"}}),
        ([("url[mediaserver][]", "a"), ("url[mediaserver][]", "b")],
         {"url": {"mediaserver": ["a", "b"]}}),
        ([("url[mediaserver][]", ["a", "b"])], {"url": {"mediaserver": ["a", "b"]}}),
        ([("platform[name]", "x"), ("platform[rtmp]", "rtmp://h/a")],
         {"platform": {"name": "x", "rtmp": "rtmp://h/a"}}),
        ([("codec", "h264"), ("geoblock", {"enabled": "N"})],
         {"codec": "h264", "geoblock": {"enabled": "N"}}),
        ([("protocols[]", "HLS"), ("protocols[]", "DASH")], {"protocols": ["HLS", "DASH"]}),
        # A plain key and its [] form together: both values count.
        ([("protocols", "HLS"), ("protocols[]", "DASH")], {"protocols": ["HLS", "DASH"]}),
        ([("url[mediaserver]", "a"), ("url[mediaserver][]", "b")],
         {"url": {"mediaserver": ["a", "b"]}}),
    ],
)  # fmt: skip
def test_bracket_keys_become_nested_data(pairs: list[tuple[str, Any]], nested: Any) -> None:
    assert unflatten(pairs) == nested


def test_region_names_and_server_ids_place_only_on_their_nodes(
    api: TestClient, key: dict[str, str], db: Database, farm_nodes: None
) -> None:
    by_id = create(api, key, name="logotest/byid", server="209")
    assert by_id["node"] == "oc-1" and by_id["status"] == "Deploying"
    by_region = create(api, key, name="logotest/byregion", server="north-america")
    assert by_region["node"] in ("na-1", "na-2")
    assert by_region["restream"]["server"]["country"] == "north-america"
    assert definition(db, by_region["id"])["node_selector"] == {"region": ["north-america"]}
    for i in range(4):  # spread would use every node; the selector keeps them in Oceania
        assert create(api, key, name=f"logotest/oc{i}", server="oceania")["node"] == "oc-1"
    mixed = api.post(
        "/v2/streams/restream/new", json={**NEW, "server": "209,north-america"}, headers=key
    )
    assert mixed.status_code == 400 and "not both" in mixed.json()["message"]


def test_the_source_url_implies_the_mode(
    api: TestClient, key: dict[str, str], db: Database
) -> None:
    for url, input_type in [
        ("https://cdn.example.com/live/playlist.m3u8", "INPUT_TYPE_HLS_URL"),
        ("https://cdn.example.com/live/manifest.mpd", "INPUT_TYPE_MPEG_DASH_URL"),
        ("http://cdn.example.com/live/stream.ts", "INPUT_TYPE_HTTP_URL"),
        ("rtmps://src.example.com/live/in", "INPUT_TYPE_RTMP_URL"),
        ("srt://src.example.com:9000", "INPUT_TYPE_SRT_URL"),
    ]:
        stream = create(api, key, name=f"mode/{input_type}", draft="1", url=url)
        assert definition(db, stream["id"])["input"]["input_type"] == input_type, url


def test_playback_urls_are_an_object_before_placement_and_urls_once_placed(
    api: TestClient, key: dict[str, str], farm_nodes: None
) -> None:
    draft = create(api, key, draft="1", protocols=["HLS"])
    assert draft["playbackurls"]["hls"] is None  # an object, its URLs unknown until placed
    published = ok(
        api.post(f"/v2/streams/restream/{draft['id']}", json={"draft": "0"}, headers=key),
        "Stream Updated",
    )
    playback = published["playbackurls"]
    assert "/live/" in playback["hls"] and playback["hls"].endswith("/" + playback["hlsManifest"])


def test_rtmp_and_rtsp_playback_need_one_node_with_both(
    api: TestClient, key: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(
        db, redis_client, "rtmp-only", offers=Offers(local_rtmp_url="rtmp://127.0.0.1/live")
    )
    simulate_node(
        db, redis_client, "rtsp-only", offers=Offers(local_rtsp_url="rtsp://127.0.0.1/live")
    )
    refused = api.post(
        "/v2/streams/restream/new", json={**NEW, "protocols": ["RTMP", "RTSP"]}, headers=key
    )
    assert refused.status_code == 400
    assert (
        "RTMP and RTSP playback needs a node with its own RTMP server" in refused.json()["message"]
    )
    assert create(api, key, protocols=["RTMP"])["node"] == "rtmp-only"


def test_a_platform_url_decides_srt_unless_told(
    api: TestClient, key: dict[str, str], farm_nodes: None
) -> None:
    number = create(api, key, draft="1")["id"]
    platform = ok(
        api.post(
            f"/v2/streams/restream/{number}/platforms",
            json={"platform[rtmp]": "rtmp://live.example.com/app", "platform[key]": "k"},
            headers=key,
        ),
        "Platform Created",
    )["platforms"][0]
    assert platform["isSRT"] is False
    moved = ok(
        api.post(
            f"/v2/streams/restream/{number}/platform/{platform['id']}",
            json={"platform[rtmp]": "srt://ingest.example.com:9000"},
            headers=key,
        ),
        "Platform Updated",
    )["platforms"][0]
    assert moved["isSRT"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/new", {**NEW, "draft": "maybe"}, 400, "draft: Input should be a valid boolean"),
        ("POST", "/new", {**NEW, "audiofix": "perhaps"}, 400, "audiofix"),
        ("POST", "/new", {**NEW, "_METHOD": "DELETE"}, 400, "_METHOD DELETE does not create"),
        ("POST", "/new", {**NEW, "name": "a b/c?d", "protocols": ["RTSP"]}, 400, "name"),
        ("POST", "/new", b"name=a%2Fb&url=\xff\xfe", 400, "the body is not UTF-8"),
        ("GET", "/\u00b2", None, 404, "stream"),
        ("GET", "?page=1000000000000000000000", None, 400, "page"),
        ("GET", "?page=0", None, 400, "page"),
        ("STATUS", "maybe", None, 400, "disabled: Input should be a valid boolean"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_saying_why(
    *,
    api: TestClient,
    key: dict[str, str],
    farm_nodes: None,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
) -> None:
    base = "/v2/streams/restream"
    if method == "STATUS":
        number = create(api, key, draft="1")["id"]
        response = api.post(f"{base}/{number}/status", json={"disabled": path}, headers=key)
    elif isinstance(body, bytes):
        form = {**key, "content-type": "application/x-www-form-urlencoded"}
        response = api.post(base + path, content=body, headers=form)
    else:
        response = api.request(method, base + path, json=body, headers=key)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["result"] == "error" and words in answer["message"], answer


def test_a_stranger_with_a_broken_body_is_told_to_authenticate(api: TestClient) -> None:
    response = api.post(
        "/v2/streams/restream/new",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 401 and response.json()["status"] == "error"


def test_a_page_of_streams_costs_the_same_queries_however_many_it_holds(
    api: TestClient, key: dict[str, str], farm_nodes: None, db: Database
) -> None:
    """Platforms, live statistics and node leases are read once for the page, not once per
    stream: a full page (50) would otherwise cost some 150 round trips."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def page_cost() -> int:
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            listed = api.get("/v2/streams/restream", headers=key)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert listed.status_code == 200
        return len(statements)

    def add_stream(i: int) -> None:
        number = create(api, key, name=f"logotest/s{i}")["id"]
        api.post(
            f"/v2/streams/restream/{number}/platforms",
            json={"platform[name]": "yt", "platform[rtmp]": "rtmp://x.example.com/live"},
            headers=key,
        )

    add_stream(0)
    one = page_cost()
    for i in range(1, 5):
        add_stream(i)
    listed = api.get("/v2/streams/restream", headers=key).json()["streams"]
    assert [s["platformsCount"] for s in listed] == [1] * 5
    assert page_cost() == one


def test_a_platform_schedule_starts_it_at_its_time_and_limits_its_runs(
    api: TestClient, key: dict[str, str], farm_nodes: None, db: Database
) -> None:
    """The seed's platform fields `schedule`, `scheduletime` and `length`: kept, shown as the
    vendor writes them, carried out by the reconciler (its own test), refused naming them."""
    number = create(api, key)["id"]
    url = f"/v2/streams/restream/{number}/platforms"
    added = ok(
        api.post(
            url,
            json={
                "platform[rtmp]": "rtmp://live.example.com/app",
                "platform[key]": "k",
                "platform[schedule]": "scheduled",
                "platform[scheduletime]": "2099-12-24 18:00:00",
                "platform[length]": "01:30",
            },
            headers=key,
        ),
        "Platform Created",
    )["platforms"][0]
    assert (added["schedule"], added["scheduletime"], added["length"]) == (
        "scheduled", "2099-12-24 18:00:00", "01:30",
    )  # fmt: skip
    assert added["state"] == "idle"  # its stream runs; the platform waits for its time
    with db.transaction() as session:
        row = session.query(Restream).filter_by(number=added["id"]).one()
        assert row.start_at == datetime(2099, 12, 24, 18, tzinfo=UTC) and row.run_for_s == 5400

    instant = ok(
        api.post(
            f"/v2/streams/restream/{number}/platform/{added['id']}",
            json={"platform[schedule]": "instant", "platform[length]": "00:00"},
            headers=key,
        ),
        "Platform Updated",
    )["platforms"][0]
    assert (instant["schedule"], instant["scheduletime"], instant["length"]) == (
        "instant", None, "00:00",
    )  # fmt: skip
    assert instant["state"] != "idle"  # no schedule: it runs with its stream now

    for fields, field in (
        ({"platform[schedule]": "scheduled"}, "platform.scheduletime"),
        ({"platform[schedule]": "scheduled", "platform[scheduletime]": "soon"}, "platform.scheduletime"),
        ({"platform[schedule]": "scheduled", "platform[scheduletime]": "2020-01-01 00:00:00"},
         "platform.scheduletime"),
        ({"platform[length]": "1h"}, "platform.length"),
        ({"platform[length]": "999:00"}, "platform.length"),
        ({"platform[schedule]": "weekly"}, "platform.schedule"),
    ):  # fmt: skip
        refused = api.post(
            url, json={"platform[rtmp]": "rtmp://live.example.com/app", **fields}, headers=key
        )
        assert refused.status_code == 400, (fields, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == [field], (fields, refused.text)


def test_a_second_source_url_is_the_backup(
    api: TestClient, key: dict[str, str], db: Database
) -> None:
    """`url[mediaserver][]` is a list: its second entry is switched to when the first stops
    delivering (continuity); a third is refused, as is a second the farm cannot pull."""
    body = {
        **NEW,
        "url[mediaserver][]": ["rtmp://src.example.com/live/in", "srt://backup.example.com:9000"],
    }
    made = create(api, key, **body)
    assert made["restream"]["urls"] == [
        "rtmp://src.example.com/live/in", "srt://backup.example.com:9000",
    ]  # fmt: skip
    with db.transaction() as session:
        row = session.query(Restream).filter_by(number=made["id"]).one()
        definition = RestreamDefinition.model_validate(row.definition)
    assert definition.backup_input is not None
    assert definition.backup_input.input_stream_url == "srt://backup.example.com:9000"
    assert definition.transcoding is not None
    assert (definition.transcoding.frame_width, definition.transcoding.frame_height) == (1280, 720)
    for urls in (
        ["rtmp://a.example/1", "rtmp://b.example/2", "rtmp://c.example/3"],
        ["rtmp://a.example/1", "gopher://b.example/2"],
    ):
        refused = api.post(
            "/v2/streams/restream/new",
            json={**NEW, "name": "x/y", "url[mediaserver][]": urls},
            headers=key,
        )
        assert refused.status_code == 400, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["url"], refused.text
