"""`/v1/events`: the cursor-paged list and its stream, scoped to the caller's project; an
event committed late never lands behind a cursor. On committed transactions (the feed follows
only what is final)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, get_args

import httpx
from fastapi.testclient import TestClient

from api.surfaces.native_events import EventType
from common import events
from common.db import Database
from tests.api.test_native import BODY
from tests.api.test_projects import new_key, new_project


def started(client: TestClient, headers: dict[str, str], name: str) -> str:
    made = client.post(
        "/v1/restreams", json={**BODY, "name": name, "active": True}, headers=headers
    )
    assert made.status_code == 201, made.text
    restream_id: str = made.json()["id"]
    return restream_id


def test_the_feed_pages_by_cursor_and_each_project_sees_its_own(
    live: TestClient, admin: dict[str, str], committing_db: Database
) -> None:
    ours, theirs = new_project(live, admin, "ours"), new_project(live, admin, "theirs")
    our_key = {"Authorization": f"Bearer {new_key(live, admin, ours, 'viewer')['key']}"}
    their_key = {"Authorization": f"Bearer {new_key(live, admin, theirs, 'operator')['key']}"}
    our_operator = {"Authorization": f"Bearer {new_key(live, admin, ours, 'operator')['key']}"}
    mine = [started(live, our_operator, f"r{i}") for i in range(3)]
    started(live, their_key, "other")
    with committing_db.transaction() as session:
        events.record(
            session, subject_kind=events.NODE, subject_id="n1", reason="joined",
            from_state="offline", to_state="active",
        )  # fmt: skip

    first = live.get("/v1/events?limit=2", headers=our_key).json()
    assert [e["subject"]["id"] for e in first["events"]] == mine[:2]
    rest = live.get(f"/v1/events?after={first['next']}", headers=our_key).json()
    assert [e["subject"]["id"] for e in rest["events"]] == mine[2:]
    assert {e["type"] for e in first["events"] + rest["events"]} == {"restream.state"}
    assert rest["events"][0]["to_state"] == "pending" and rest["events"][0]["project_id"] == ours
    after_all = live.get(f"/v1/events?after={rest['next']}", headers=our_key).json()
    assert after_all == {"events": [], "next": rest["next"]}  # nothing new: the same cursor

    everything = live.get("/v1/events", headers=admin).json()["events"]
    assert len(everything) == 5 and everything[-1]["type"] == "node.state"  # farm-wide: all
    nodes_only = live.get("/v1/events?types=node.state", headers=admin).json()["events"]
    assert [e["subject"] for e in nodes_only] == [{"kind": "node", "id": "n1"}]

    for query, field in (("types=restream.started", "types"), ("after=yesterday", "after")):
        refused = live.get(f"/v1/events?{query}", headers=admin)
        assert refused.status_code == 422
        assert refused.json()["error"]["problems"][0]["field"] == field


def test_an_event_committed_late_is_not_passed_over(
    live: TestClient, admin: dict[str, str], committing_db: Database
) -> None:
    """Transaction A writes an event first (the lower id) and commits last. A reader that
    saw B's event before A committed must still get A's after: the feed places events as
    they are committed, so A's comes after B's, past the reader's cursor, not behind it."""

    def note(session: Any, what: str) -> None:
        events.record(session, subject_kind=events.NODE, subject_id=what, reason=what)

    a_wrote, a_may_end = threading.Event(), threading.Event()

    def slow() -> None:
        with committing_db.transaction() as session:
            note(session, "a")
            session.flush()
            a_wrote.set()
            a_may_end.wait(10)

    writer = threading.Thread(target=slow)
    writer.start()
    a_wrote.wait(10)
    with committing_db.transaction() as session:
        note(session, "b")
    try:
        early = live.get("/v1/events", headers=admin).json()
        assert [e["subject"]["id"] for e in early["events"]] == ["b"]  # a: not committed
    finally:
        a_may_end.set()
        writer.join()
    late = live.get(f"/v1/events?after={early['next']}", headers=admin).json()
    assert [e["subject"]["id"] for e in late["events"]] == ["a"]  # after b's cursor
    assert late["events"][0]["id"] < early["events"][0]["id"]  # though its id is lower


def test_the_types_the_api_documents_are_the_types_there_are() -> None:
    assert get_args(EventType) == events.TYPES


def test_the_stream_follows_from_now_and_resumes_from_last_event_id(
    served: str, admin: dict[str, str]
) -> None:
    with httpx.Client(base_url=served, headers=admin, timeout=10) as http:
        http.post("/v1/restreams", json={**BODY, "name": "before", "active": True})
        stream_headers = {"Accept": "text/event-stream"}
        seen: list[dict[str, str]] = []
        with http.stream("GET", "/v1/events", headers=stream_headers) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            made = http.post("/v1/restreams", json={**BODY, "name": "after", "active": True})
            restream_id = made.json()["id"]
            started_at = time.monotonic()
            frame: dict[str, str] = {}
            for line in lines:
                if line:
                    field, _, value = line.partition(": ")
                    frame[field] = value
                elif frame.get("event"):
                    seen.append(frame)
                    break
            assert time.monotonic() - started_at < 3  # polled every half a second
        event = json.loads(seen[0]["data"])
        assert event["subject"]["id"] == restream_id  # from now: not "before"'s events
        assert seen[0]["event"] == "restream.state" and seen[0]["id"] == event["cursor"]

        http.post(f"/v1/restreams/{restream_id}/stop")
        resumed = {**stream_headers, "Last-Event-ID": seen[0]["id"]}
        with http.stream("GET", "/v1/events", headers=resumed) as stream:
            data = next(line for line in stream.iter_lines() if line.startswith("data: "))
        assert json.loads(data.removeprefix("data: "))["to_state"] in ("stopping", "idle")
