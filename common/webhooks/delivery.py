"""Sending webhook deliveries: claim what is due, sign, send, record the answer.

A sender claims due deliveries in a short transaction (moving their next time past the send,
so another sender skips them) and sends outside any transaction; a delivery whose sender died
is due again once that time passes. A 2xx answer delivers it; anything else (another status, a
timeout, a refused connection) schedules the next attempt — 2, 4, 8 s … up to an hour apart —
until 24 h after the event, when it is given up (`failed`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common import outbound
from common.db import database_now
from common.models import Webhook, WebhookDelivery
from common.webhooks import DELIVERED, FAILED, PENDING

SEND_TIMEOUT_S = 5.0
CLAIM_S = 60  # a claimed delivery is due again this long after, if its sender never says
LONGEST_PAUSE_S = 3600
KEPT_RESPONSE = 1000  # characters of an answer kept
SIGNATURE = "Streamfleet-Signature"


@dataclass(frozen=True)
class Claimed:
    id: int
    url: str
    secret: str
    body: bytes
    event_type: str


@dataclass(frozen=True)
class Answer:
    status: int | None  # the HTTP status, None if none came
    response: str | None  # the start of the answer's body
    error: str | None  # why nothing (good) came

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# The soonest pending delivery of an active webhook: seconds until it is due (<= 0: now).
_DUE_IN = (
    select(func.extract("epoch", WebhookDelivery.next_at - func.clock_timestamp()))
    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
    .where(WebhookDelivery.state == PENDING, Webhook.active.is_(True))
    .order_by(WebhookDelivery.next_at)
    .limit(1)
)


def due_in_s(session: Session) -> float | None:
    """Seconds until the next delivery is due (0 or less: one is due now), None when none
    waits (one indexed look, no lock): what a sender asks before it claims, and how long it
    may then sleep."""
    seconds = session.connection().execute(_DUE_IN).scalar()
    return None if seconds is None else float(seconds)


def claim(session: Session, limit: int) -> list[Claimed]:
    """Up to `limit` due deliveries, claimed for this sender."""
    now = database_now(session)
    rows = session.execute(
        select(WebhookDelivery, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            WebhookDelivery.state == PENDING,
            WebhookDelivery.next_at <= now,
            Webhook.active.is_(True),  # a paused webhook keeps its deliveries for later
        )
        .order_by(WebhookDelivery.next_at)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    ).all()
    claimed = []
    for delivery, url, secret in rows:
        delivery.attempts += 1
        delivery.next_at = now + timedelta(seconds=CLAIM_S)
        body = json.dumps(delivery.body, separators=(",", ":")).encode()
        claimed.append(Claimed(delivery.id, url, secret, body, delivery.body.get("type", "")))
    return claimed


def record(session: Session, delivery_id: int, answer: Answer) -> None:
    """What the endpoint answered, and what follows: delivered, the next attempt, or failed."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:  # its webhook was removed meanwhile
        return
    now = database_now(session)
    delivery.last_at, delivery.last_status = now, answer.status
    delivery.last_response, delivery.last_error = answer.response, answer.error
    if answer.delivered:
        delivery.state = DELIVERED
    elif now >= delivery.give_up_at:
        delivery.state = FAILED
    else:
        delivery.next_at = now + timedelta(seconds=pause_s(delivery.attempts))


def pause_s(attempts: int) -> float:
    """Before the next attempt, after `attempts` failed ones: 2, 4, 8 … s, at most an hour, a
    tenth more or less (so that many endpoints failing together do not retry together)."""
    base = min(LONGEST_PAUSE_S, 2.0 ** max(1, attempts))
    return base * random.uniform(0.9, 1.1)  # noqa: S311  (spreading retries, not a secret)


def signature(secret: str, body: bytes, at: int) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: a receiver recomputes it with
    the webhook's secret and refuses an old `t` (a replay)."""
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def send(claimed: Claimed, *, allow_private: bool, timeout_s: float | None = None) -> Answer:
    """POST one delivery (waiting `SEND_TIMEOUT_S` at most; to the addresses `common.outbound`
    allows, never redirected); what came back."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "streamfleet-webhooks",
        SIGNATURE: signature(claimed.secret, claimed.body, int(time.time())),
        "Streamfleet-Delivery": str(claimed.id),
        "Streamfleet-Event-Type": claimed.event_type,
    }
    try:
        reply = outbound.request(
            "POST",
            claimed.url,
            body=claimed.body,
            headers=headers,
            timeout_s=timeout_s or SEND_TIMEOUT_S,
            read_at_most=KEPT_RESPONSE,
            allow_private=allow_private,
        )
    except outbound.Refused as refused:
        return Answer(None, None, f"refused: {refused}")
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, reset
        return Answer(None, None, str(error) or type(error).__name__)
    said = reply.body.decode(errors="replace")[:KEPT_RESPONSE]
    return Answer(reply.status, said, None if 200 <= reply.status < 300 else f"HTTP {reply.status}")
