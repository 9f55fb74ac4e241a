"""Schedules on the native surface: given, shown, replaced, cleared; refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_native import BODY, create


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def refused(client: TestClient, bearer: dict[str, str], schedule: Any, **body: Any) -> list[str]:
    answer = client.post(
        "/v1/restreams", json={**BODY, **body, "schedule": schedule}, headers=bearer
    )
    assert answer.status_code == 422, answer.text
    problems = answer.json()["error"]["problems"]
    assert client.get("/v1/restreams", headers=bearer).json()["total"] == 0  # nothing kept
    return [f"{p['field']}: {p['message']}" for p in problems]


def test_a_schedule_is_kept_shown_replaced_and_cleared(
    client: TestClient, bearer: dict[str, str]
) -> None:
    start = later(hours=2)
    made = create(client, bearer, schedule={"start_at": start, "duration_s": 3600})
    assert made["state"] == "idle" and made["active"] is False
    assert made["schedule"]["duration_s"] == 3600 and made["schedule"]["stop_at"] is None
    assert datetime.fromisoformat(made["schedule"]["start_at"]) == datetime.fromisoformat(start)
    url = f"/v1/restreams/{made['id']}"
    assert client.get(url, headers=bearer).json()["schedule"] == made["schedule"]
    listed = client.get("/v1/restreams", headers=bearer).json()["items"]
    assert listed[0]["schedule"] == made["schedule"]

    stop = later(hours=3)
    replaced = client.patch(url, json={"schedule": {"stop_at": stop}}, headers=bearer).json()
    assert replaced["schedule"]["start_at"] is None and replaced["schedule"]["duration_s"] is None
    renamed = client.patch(url, json={"name": "other"}, headers=bearer).json()
    assert renamed["schedule"] == replaced["schedule"]  # a PATCH without it keeps it
    cleared = client.patch(url, json={"schedule": None}, headers=bearer).json()
    assert cleared["schedule"] is None


def test_a_duration_given_to_a_running_restream_counts_from_now(
    client: TestClient, bearer: dict[str, str]
) -> None:
    made = create(client, bearer, active=True)
    url = f"/v1/restreams/{made['id']}"
    given = client.patch(url, json={"schedule": {"duration_s": 90}}, headers=bearer).json()
    stop = datetime.fromisoformat(given["schedule"]["stop_at"])
    assert 80 < (stop - datetime.now(UTC)).total_seconds() <= 91


@pytest.mark.parametrize(
    ("schedule", "body", "expected"),
    [
        ({"start_at": "2020-01-01T00:00:00Z"}, {}, "schedule.start_at: 2020-01-01T00:00:00+00:00 is in the past"),
        ({"stop_at": "2020-01-01T00:00:00Z"}, {}, "schedule.stop_at: 2020-01-01T00:00:00+00:00 is in the past"),
        ({"start_at": "2099-01-01T10:00:00"}, {}, "schedule.start_at: Input should have timezone info"),
        ({"start_at": "tomorrow"}, {}, "schedule.start_at: Input should be a valid datetime"),
        ({"start_at": "2099-01-02T00:00:00Z", "stop_at": "2099-01-01T00:00:00Z"}, {},
         "schedule: stop_at must come after start_at"),
        ({"stop_at": "2099-01-01T00:00:00Z", "duration_s": 60}, {},
         "schedule: give stop_at or duration_s, not both"),
        ({"duration_s": 0}, {}, "schedule.duration_s: Input should be greater than 0"),
        ({}, {}, "schedule: give start_at, stop_at or duration_s (or null for no schedule)"),
        ({"start_at": "2099-01-01T00:00:00Z", "every": "day"}, {}, "schedule.every: Extra inputs are not permitted"),
        ({"start_at": "2099-01-01T00:00:00Z"}, {"active": True},
         "active: it starts at schedule.start_at: leave active out"),
    ],
)  # fmt: skip
def test_a_malformed_schedule_is_refused_naming_the_field(
    client: TestClient, bearer: dict[str, str], schedule: Any, body: Any, expected: str
) -> None:
    found = refused(client, bearer, schedule, **body)
    assert any(problem.startswith(expected) for problem in found), found
