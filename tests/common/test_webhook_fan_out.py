"""The deliveries an event writes (the trigger of migration 0011), on real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, text

from common import events, webhooks
from common.db import Database, database_now
from common.models import Event, Project, Webhook, WebhookDelivery
from common.webhooks import delivery

PROJECT, OTHER = "a" * 24, "c" * 24


def _hook(hook_id: str, kinds: list[str], *, active: bool = True) -> Webhook:
    return Webhook(id=hook_id, project_id=PROJECT, url="http://h.example/", secret="s" * 20,
                   kinds=kinds, active=active)  # fmt: skip


def test_an_event_writes_a_delivery_for_each_webhook_that_wants_it(db: Database) -> None:
    with db.transaction() as session:
        session.add_all([Project(id=PROJECT, name="p"), Project(id=OTHER, name="o")])
        session.flush()
        session.add_all([
            _hook("1" * 24, []),  # every type
            _hook("2" * 24, ["restream.state", "node.state"]),
            _hook("3" * 24, ["restream.note"]),  # not this type
            _hook("4" * 24, [], active=False),  # paused: nothing new for it
        ])  # fmt: skip
        session.flush()
        # Not a list (never written so, but never to fail a change over): every type.
        session.execute(insert(Webhook).values(
            id="5" * 24, project_id=PROJECT, url="http://h.example/", secret="s" * 20,
            kinds=text("'null'::jsonb"), active=True,
        ))  # fmt: skip
        session.flush()
        events.record(session, subject_kind=events.RESTREAM, subject_id="r" * 24,
                      reason="start requested", from_state="idle", to_state="pending",
                      project_id=PROJECT, node_name="n1", generation=3)  # fmt: skip
        events.record(session, subject_kind=events.RESTREAM, subject_id="o" * 24,
                      reason="another project's", from_state="idle", to_state="pending",
                      project_id=OTHER)  # fmt: skip
        events.record(session, subject_kind=events.NODE, subject_id="n1", reason="farm-wide",
                      from_state="active", to_state="draining")  # fmt: skip
        session.flush()
        event = session.execute(select(Event).where(Event.project_id == PROJECT)).scalar_one()
        rows = session.execute(select(WebhookDelivery).order_by(WebhookDelivery.webhook_id))
        deliveries = list(rows.scalars())
    assert [d.webhook_id for d in deliveries] == ["1" * 24, "2" * 24, "5" * 24]
    for found in deliveries:
        assert found.event_id == event.id
        assert found.body == events.as_json(event)  # the feed's own rendering, to the byte
        assert (found.state, found.attempts, found.next_at) == (webhooks.PENDING, 0, event.at)
        assert found.give_up_at - found.next_at == webhooks.RETRY_FOR


def test_a_sender_asks_when_the_next_delivery_is_due_in_one_statement(db: Database) -> None:
    """`due_in_s`: what a sender asks before it claims (most times, nothing), and how long it
    may sleep."""
    with db.transaction() as session:
        assert delivery.due_in_s(session) is None
        session.add(Project(id=PROJECT, name="p"))
        session.flush()
        session.add_all([_hook("1" * 24, []), _hook("2" * 24, [], active=False)])
        session.flush()
        now = database_now(session)
        later = WebhookDelivery(
            webhook_id="1" * 24,
            event_id=1,
            body={},
            state=webhooks.PENDING,
            attempts=0,
            next_at=now + timedelta(minutes=1),
            give_up_at=now,
        )
        paused = WebhookDelivery(webhook_id="2" * 24, event_id=2, body={}, state=webhooks.PENDING,
                                 attempts=0, next_at=now, give_up_at=now)  # fmt: skip
        session.add_all([later, paused])
        session.flush()
        due_in_s = delivery.due_in_s(session)  # one not yet due, one of a paused webhook
        assert due_in_s is not None and 50 < due_in_s <= 60
        later.next_at = now
        session.flush()
        due_in_s = delivery.due_in_s(session)
        assert due_in_s is not None and due_in_s <= 0
