"""Webhooks: a project's endpoints told of its events, from the outbox.

Recording an event of a project writes one delivery per webhook that wants it, in the event's
own statement: a trigger on `events` (`webhook_fan_out`, migration 0011) inserts them, with the
event as `common.events.as_json` shows it as their body, so no transaction that records an
event spends a round trip asking whether its project has webhooks. A change rolled back sends
nothing, a committed one is never lost.

Workers send what is due (`common.webhooks.delivery`, `worker.webhooks`), never a request: a
dead endpoint slows no API call. Each delivery is signed, retried with backoff for 24 h, and
keeps what the endpoint last answered.
"""

from __future__ import annotations

from datetime import timedelta

RETRY_FOR = timedelta(hours=24)  # also in the trigger (migration 0011)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
