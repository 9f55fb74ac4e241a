"""Webhooks: a project's admins manage them; every event of the project is written as a
delivery with the change (nothing if it rolls back, nothing sent from a request), and a
worker's sender POSTs it signed to a real HTTP receiver on loopback, retrying with backoff
until it is answered 2xx; what it answered is kept."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common import events
from common.db import Database, database_now
from common.models import Project, Webhook, WebhookDelivery
from common.webhooks import delivery
from tests.api.test_events import started
from tests.api.test_projects import new_key, new_project
from tests.support.wait import wait_for
from tests.support.webhooks import Receiver
from worker.webhooks import WebhookSender


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(failures=2)
    yield made
    made.close()


def test_deliveries_are_signed_retried_with_backoff_and_recorded(
    live: TestClient,
    admin: dict[str, str],
    committing_db: Database,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "LONGEST_PAUSE_S", 0.5)  # backoff itself: tested below
    project = new_project(live, admin, "hooked")
    made = live.post(
        f"/v1/projects/{project}/webhooks",
        json={"url": receiver.url, "events": ["restream.state"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    receiver.secret = hook["secret"]
    operator = {"Authorization": f"Bearer {new_key(live, admin, project, 'operator')['key']}"}
    restream_id = started(live, operator, "watched")

    sender = WebhookSender(committing_db, allow_private=True, every_s=0.1)  # a loopback receiver
    sender.start()
    try:
        wait_for(lambda: len(receiver.got) >= 3, timeout_s=15, every_s=0.05, what="3 attempts")
    finally:
        sender.stop()
    first, second, third = receiver.got[:3]
    assert first["delivery"] == second["delivery"] == third["delivery"]  # one, retried
    assert all(g["signed"] and g["fresh"] for g in receiver.got)
    assert first["body"]["subject"] == {"kind": "restream", "id": restream_id}
    assert first["body"]["type"] == "restream.state" and first["body"]["to_state"] == "pending"
    assert third["at"] - second["at"] >= 0.4  # a pause between attempts

    listed = live.get(
        f"/v1/projects/{project}/webhooks/{hook['id']}/deliveries", headers=admin
    ).json()
    assert [(d["state"], d["attempts"], d["last_status"], d["last_response"]) for d in listed] == [
        ("delivered", 3, 200, "thanks")
    ]
    assert listed[0]["next_at"] is None and listed[0]["type"] == "restream.state"


def test_an_event_rolled_back_sends_nothing_and_a_request_sends_nothing(
    live: TestClient,
    admin: dict[str, str],
    committing_db: Database,
) -> None:
    project = new_project(live, admin, "quiet")
    hook = live.post(
        f"/v1/projects/{project}/webhooks",
        json={"url": "http://127.0.0.1:9/never"},  # nothing listens: it would hang or fail
        headers=admin,
    ).json()
    with pytest.raises(RuntimeError), committing_db.transaction() as session:
        events.record(
            session, subject_kind=events.RESTREAM, subject_id="x", reason="r",
            project_id=project,
        )  # fmt: skip
        raise RuntimeError("the change fails")
    operator = {"Authorization": f"Bearer {new_key(live, admin, project, 'operator')['key']}"}
    for i in range(3):
        started(live, operator, f"r{i}")
    with committing_db.transaction() as session:
        rows = session.execute(
            select(WebhookDelivery.state, WebhookDelivery.attempts).where(
                WebhookDelivery.webhook_id == hook["id"]
            )
        ).all()
    assert [tuple(r) for r in rows] == [("pending", 0)] * 3  # written, none tried by a request


def test_webhooks_are_an_admins_and_refused_naming_the_field(
    live: TestClient,
    admin: dict[str, str],
) -> None:
    project, other = new_project(live, admin, "p"), new_project(live, admin, "o")
    path = f"/v1/projects/{project}/webhooks"
    made = live.post(path, json={"url": "https://hooks.example/a", "secret": "s" * 20},
                     headers=admin)  # fmt: skip
    assert made.status_code == 201 and made.json()["secret"] == "s" * 20
    hook_id = made.json()["id"]
    listed = live.get(path, headers=admin).json()
    assert listed == [{k: v for k, v in made.json().items() if k != "secret"}]  # shown once
    changed = live.patch(
        f"{path}/{hook_id}", json={"active": False, "events": ["node.state"]}, headers=admin
    ).json()
    assert (changed["active"], changed["events"]) == (False, ["node.state"])
    for body, field in (
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://a.example", "events": ["restream.started"]}, "events"),
        ({"url": "https://a.example", "secret": "short"}, "secret"),
    ):
        refused = live.post(path, json=body, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["problems"][0]["field"].startswith(field)
    operator = {"Authorization": f"Bearer {new_key(live, admin, project, 'operator')['key']}"}
    assert live.get(path, headers=operator).status_code == 403
    outsider = {"Authorization": f"Bearer {new_key(live, admin, other, 'admin')['key']}"}
    assert live.get(path, headers=outsider).status_code == 404
    assert live.delete(f"{path}/{hook_id}", headers=admin).status_code == 204
    assert live.get(f"{path}/{hook_id}", headers=admin).status_code == 404


def test_backoff_doubles_to_an_hour_and_a_day_later_it_gives_up(committing_db: Database) -> None:
    pauses = [delivery.pause_s(n) for n in (1, 2, 3, 12, 40)]
    assert 1.8 <= pauses[0] <= 2.2 and 3.6 <= pauses[1] <= 4.4 and 7.2 <= pauses[2] <= 8.8
    assert 3240 <= pauses[3] <= 3960 and 3240 <= pauses[4] <= 3960
    with committing_db.transaction() as session:
        session.add(Project(id="a" * 24, name="old"))
        session.add(Webhook(id="b" * 24, project_id="a" * 24, url="http://h.example/",
                            secret="s" * 20, kinds=[], active=True))  # fmt: skip
        session.flush()
        a_day_ago = database_now(session) - timedelta(hours=25)
        row = WebhookDelivery(webhook_id="b" * 24, event_id=1, body={}, state="pending",
                              attempts=9, next_at=a_day_ago, give_up_at=a_day_ago)  # fmt: skip
        session.add(row)
        session.flush()
        old = row.id
    with committing_db.transaction() as session:
        assert [c.id for c in delivery.claim(session, 10)] == [old]
        delivery.record(session, old, delivery.Answer(500, "no", "HTTP 500"))
    with committing_db.transaction() as session:
        found = session.get(WebhookDelivery, old)
        assert found is not None
        assert (found.state, found.attempts, found.last_status) == ("failed", 10, 500)
        assert delivery.claim(session, 10) == []  # given up: never due again


def test_where_deliveries_may_go(receiver: Receiver) -> None:
    """Link-local never (a cloud's metadata); loopback and private addresses only if the
    operator allows them; a redirect is an answer, not followed."""

    def sent(url: str, allow_private: bool) -> delivery.Answer:
        claimed = delivery.Claimed(1, url, "s", b"{}", "node.state")
        return delivery.send(claimed, allow_private=allow_private, timeout_s=1)

    metadata = sent("http://169.254.169.254/latest", allow_private=True)
    assert metadata.status is None and "link-local" in (metadata.error or "")
    local = sent(receiver.url, allow_private=False)
    assert local.status is None and "STREAMFLEET_OUTBOUND_PRIVATE" in (local.error or "")
    assert receiver.got == []  # nothing reached it
    receiver.failures = 0
    assert sent(receiver.url, allow_private=True).status == 200
    receiver.redirect = "http://169.254.169.254/latest"
    moved = sent(receiver.url, allow_private=True)
    assert moved.status == 302 and moved.error == "HTTP 302"  # not followed


def test_a_sender_claims_no_more_than_it_can_send_at_once(
    live: TestClient,
    admin: dict[str, str],
    committing_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint that never answers holds a sender until the timeout: what the sender cannot
    send yet stays unclaimed (claimed, it would wait in a queue while its claim ran out)."""
    monkeypatch.setattr(delivery, "SEND_TIMEOUT_S", 2.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections queue; nothing ever answers
    project = new_project(live, admin, "hanging")
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    live.post(f"/v1/projects/{project}/webhooks", json={"url": url}, headers=admin)
    operator = {"Authorization": f"Bearer {new_key(live, admin, project, 'operator')['key']}"}
    for i in range(5):
        started(live, operator, f"r{i}")
    sender = WebhookSender(committing_db, allow_private=True, senders=2)
    try:
        assert sender.send_due().claimed == 2
        assert sender.send_due().claimed == 0  # both busy
    finally:
        sender.stop()
        silent.close()
    with committing_db.transaction() as session:
        tried = session.execute(select(WebhookDelivery.attempts)).scalars().all()
    assert sorted(tried) == [0, 0, 0, 1, 1]
