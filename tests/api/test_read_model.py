"""One read model: a page of restreams costs the same number of SQL statements and Redis
round trips whether it holds 1 restream or 50, on every surface (`common.lifecycle.views`).

Each surface's list is read once with one restream and once with fifty, all placed on a live
node with live statistics in Redis, so that every part of a row (state, statistics, last
error, node lease, ingest and playback URLs) is looked up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from common import live
from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.config import Settings
from common.db import Database
from common.models import Restream
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.nodes import Offers, simulate_node

FARM = Principal("tests", Role.ADMIN, None)
PAGE = 50
TEST_VIDEO = {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}
UDP_OUT = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"}
HLS_OUT = {"output_type": "OUTPUT_TYPE_HLS"}


@pytest.fixture
def api(settings: Settings, db: Database, redis_client: redis.Redis) -> Iterator[TestClient]:
    roomy = settings.model_copy(
        update={"cdn_api_requests_per_s": 0, "live_video_ports": "21000-21199"}
    )
    offers = Offers(playback_base_url="https://n1.example.com", address="198.51.100.1")
    simulate_node(db, redis_client, "n1", millicores=10**7, offers=offers)
    with TestClient(create_app(roomy, db=db)) as client:
        yield client


@contextmanager
def counting(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """SQL statements sent, and Redis round trips made (a command, or a whole pipeline)."""
    counts: Counter[str] = Counter()

    def statement(*_: Any) -> None:
        counts["sql"] += 1

    command: Callable[..., Any] = redis.Redis.execute_command
    pipeline: Callable[..., Any] = redis.client.Pipeline.execute

    def one_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        counts["redis"] += 1
        return command(self, *args, **options)

    def one_pipeline(self: redis.client.Pipeline, *args: Any, **options: Any) -> Any:
        counts["redis"] += 1
        return pipeline(self, *args, **options)

    event.listen(db.engine, "before_cursor_execute", statement)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(redis.Redis, "execute_command", one_command)
            patch.setattr(redis.client.Pipeline, "execute", one_pipeline)
            yield counts
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)


def live_statistics(db: Database, client: redis.Redis) -> int:
    """Statistics in Redis for every placed restream, as its node writes them; how many."""
    with db.transaction() as session:
        placed = [
            (r.id, r.node_name, r.generation)
            for r in session.query(Restream).all()
            if r.node_name is not None
        ]
    stats = [
        live.RestreamStats(
            restream_id=rid, node=node, generation=generation, state="running",
            bitrate_kbps=900.0, last_error="a recent error line",
        )
        for rid, node, generation in placed
    ]  # fmt: skip
    live.write_stats(client, stats, 60.0)
    return len(stats)


def costs(
    db: Database,
    client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    add: Callable[[int], None],
    read: Callable[[], Any],
) -> list[Counter[str]]:
    """What reading costs with one restream, then with `PAGE`."""
    found = []
    for total in (1, PAGE):
        add(total)
        assert live_statistics(db, client) >= total
        with counting(db, monkeypatch) as counts:
            response = read()
        assert response.status_code in (200, 201), response.text
        found.append(counts)
    return found


def project_key(db: Database, header: str) -> dict[str, str]:
    with db.transaction() as session:
        project = projects.create(session, FARM, "readers")
        _, key = create_api_key(session, "readers", project_id=project.id, role=Role.OPERATOR)
    return {header: key, "project": project.id}


def test_native_list(
    api: TestClient, db: Database, redis_client: redis.Redis, api_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bearer = {"Authorization": f"Bearer {api_key}"}
    made: list[str] = []

    def add(total: int) -> None:
        while len(made) < total:
            source = (
                TEST_VIDEO
                if len(made) % 2
                else {
                    "input_type": "INPUT_TYPE_RTMP_LISTEN",
                    "input_stream_listen_port": {"port": 30000 + len(made)},
                }
            )
            body = {
                "name": f"r{len(made)}",
                "active": True,
                "input": source,
                "outputs": [UDP_OUT, HLS_OUT],
            }
            response = api.post("/v1/restreams", json=body, headers=bearer)
            assert response.status_code == 201, response.text
            made.append(response.json()["id"])

    one, fifty = costs(
        db, redis_client, monkeypatch, add,
        lambda: api.get("/v1/restreams", params={"limit": PAGE}, headers=bearer),
    )  # fmt: skip
    assert one == fifty, (one, fifty)

    # The list makes its rows' JSON from plain rows; a restream's own read, from its model:
    # both say the same, to the last field.
    items = api.get("/v1/restreams", params={"limit": PAGE}, headers=bearer).json()["items"]
    assert [item["id"] for item in items] == made  # oldest first
    for item in items:
        assert item == api.get(f"/v1/restreams/{item['id']}", headers=bearer).json()
    assert {item["last_error"] for item in items} == {"a recent error line"}
    assert sum(item["ingest_url"] is not None for item in items) == PAGE // 2


def test_callaba_lists(
    api: TestClient, db: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = api.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    token = {"x-access-token": login.json()["token"]}
    made: list[str] = []

    def add(total: int) -> None:
        while len(made) < total:
            body = {"restream_name": f"c{len(made)}", "input": TEST_VIDEO, "output": [UDP_OUT]}
            response = api.post("/api/restream/create", json=body, headers=token)
            assert response.status_code == 200, response.text
            made.append(response.json()["id"])

    for path in ("/api/restream/getAll", "/api/restream/getStat"):
        made.clear()
        with db.transaction() as session:
            session.query(Restream).delete()
        one, fifty = costs(
            db, redis_client, monkeypatch, add, partial(api.post, path, headers=token)
        )
        assert one == fifty, (path, one, fifty)


def test_gjirafa_lists(
    api: TestClient, db: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = project_key(db, "Authorization")
    project = key.pop("project")
    base = f"/api/v1/{project}"
    videos: list[str] = []

    def add_video(total: int) -> None:
        while len(videos) < total:
            response = api.post(f"{base}/live-videos", json={"title": "V"}, headers=key)
            assert response.status_code == 201, response.text
            videos.append(response.json()["result"]["id"])

    one, fifty = costs(
        db, redis_client, monkeypatch, add_video,
        lambda: api.get(f"{base}/live-videos", headers=key),
    )  # fmt: skip
    assert one == fifty, ("live videos", one, fifty)

    destinations = 0

    def add_destination(total: int) -> None:
        nonlocal destinations
        while destinations < total:
            body = {"videoId": videos[0], "title": "YT", "streamUrl": "rtmp://yt.example/live2",
                    "streamKey": f"k{destinations}", "status": True}  # fmt: skip
            response = api.post(f"{base}/restreams", json=body, headers=key)
            assert response.status_code == 201, response.text
            destinations += 1

    one, fifty = costs(
        db, redis_client, monkeypatch, add_destination,
        lambda: api.get(f"{base}/live-video/{videos[0]}/restreams", headers=key),
    )  # fmt: skip
    assert one == fifty, ("destinations", one, fifty)


def test_fivecents_list(
    api: TestClient, db: Database, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = project_key(db, "X-API-Key")
    key.pop("project")
    streams: list[int] = []

    def add(total: int) -> None:
        while len(streams) < total:
            body = {"name": f"show/s{len(streams)}", "protocols": ["HLS"],
                    "url[mediaserver][]": "rtmp://src.example.com/live/in"}  # fmt: skip
            response = api.post("/v2/streams/restream/new", json=body, headers=key)
            assert response.status_code == 200, response.text
            number = response.json()["stream"]["id"]
            streams.append(number)
            platform = {"platform[name]": "YT", "platform[rtmp]": "rtmp://yt.example/live2",
                        "platform[key]": f"k{number}"}  # fmt: skip
            added = api.post(f"/v2/streams/restream/{number}/platforms", json=platform,
                             headers=key)  # fmt: skip
            assert added.status_code == 200, added.text

    one, fifty = costs(
        db, redis_client, monkeypatch, add,
        lambda: api.get("/v2/streams/restream", headers=key),
    )  # fmt: skip
    assert one == fifty, (one, fifty)
