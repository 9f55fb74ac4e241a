"""Webhooks: a project's endpoints told of its events, from the outbox.

Recording an event of a project writes one delivery per webhook that wants it, in the event's
own transaction (`fan_out`): a change rolled back sends nothing, a committed one is never lost.
Workers send what is due (`common.webhooks.delivery`, `worker.webhooks`), never a request: a
dead endpoint slows no API call. Each delivery is signed, retried with backoff for 24 h, and
keeps what the endpoint last answered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.models import Event, Webhook, WebhookDelivery

RETRY_FOR = timedelta(hours=24)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def fan_out(session: Session, event: Event, render: Callable[[Event], dict[str, Any]]) -> None:
    """A delivery of `event` (as `render` shows it) for each active webhook of its project
    that wants its type."""
    hooks = session.execute(
        select(Webhook.id, Webhook.kinds).where(
            Webhook.project_id == event.project_id, Webhook.active.is_(True)
        )
    ).all()
    kind = f"{event.subject_kind}.{event.kind}"
    wanted = [hook_id for hook_id, kinds in hooks if not kinds or kind in kinds]
    if not wanted:
        return
    session.flush()  # the event's id
    body = render(event)
    for hook_id in wanted:
        session.add(
            WebhookDelivery(
                webhook_id=hook_id,
                event_id=event.id,
                body=body,
                state=PENDING,
                attempts=0,
                next_at=event.at,
                give_up_at=event.at + RETRY_FOR,
            )
        )
