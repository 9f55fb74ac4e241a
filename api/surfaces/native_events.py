"""The native surface's event feed and webhooks: `/v1/events` (a cursor-paged list, or
Server-Sent Events with `Accept: text/event-stream`) and `/v1/projects/{id}/webhooks`.

A project's credential sees its project's events; a farm-wide one every event, nodes' too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import BearerPrincipal
from api.deps import ApiState, SessionDep, StateDep
from api.errors import surface_route
from api.surfaces.native import ERRORS, render_error
from common import events
from common.models import Webhook, WebhookDelivery
from common.webhooks import service as webhooks

router = APIRouter(prefix="/v1", tags=["native: events"], responses=ERRORS)
router.route_class = surface_route(render_error)

EventType = Literal[
    "restream.state",
    "restream.input_switch",
    "restream.note",
    "node.state",
    "node.note",
    "server.state",
    "server.note",
]
POLL_S = 0.5  # a stream looks for new events this often
KEEPALIVE_S = 15.0  # and says something at least this often, so that proxies keep it open
SSE = "text/event-stream"


class Subject(BaseModel):
    kind: Literal["restream", "node", "server"]
    id: str


class FollowedEvent(BaseModel):
    id: int
    cursor: str = Field(description="Pass as `after` (or `Last-Event-ID`) to go on after it.")
    type: EventType
    at: datetime
    subject: Subject
    project_id: str | None
    from_state: str | None
    to_state: str | None
    reason: str
    node: str | None
    generation: int | None


class EventPage(BaseModel):
    events: list[FollowedEvent]
    next: str | None = Field(description="The cursor to ask with next (`after`).")


def _followed(event: Any) -> dict[str, Any]:
    return {**events.as_json(event), "cursor": events.cursor(event)}


@router.get(
    "/events",
    responses={200: {"content": {SSE: {"schema": {"type": "string"}}}}},
    summary="Events of restreams and nodes: a page, or a stream (Accept: text/event-stream)",
)
async def list_events(
    request: Request,
    *,
    state: StateDep,
    principal: BearerPrincipal,
    after: Annotated[str | None, Query(description="A cursor: events after it.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    types: Annotated[
        str | None, Query(description=f"Comma-separated, of: {', '.join(events.TYPES)}.")
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    last_event_id: Annotated[
        str | None, Header(description="A stream's reconnect: the last event's `id:`.")
    ] = None,
) -> Any:
    """Events in the order they were committed, never one behind a cursor later. As a
    page: `?after=` the last page's `next` (none: from the oldest). As Server-Sent Events (each
    with `id:` its cursor, `event:` its type): from `after` or `Last-Event-ID`, else from now."""
    wanted = events.check_types(types)
    scope = principal.project_id

    def read(since: str | None) -> list[dict[str, Any]]:
        with state.db.transaction() as session:  # committed before anyone reads it
            events.sequence(session)
        with state.db.transaction() as session:
            found = events.page(session, project_id=scope, after=since, limit=limit, types=wanted)
            return [_followed(e) for e in found]

    if SSE in (accept or ""):
        start = after or last_event_id
        if start is None:
            await _at_database(state, events.sequence)
            start = await _at_database(state, lambda s: events.end(s, project_id=scope))
        else:
            events.check_cursor(start)
        return StreamingResponse(
            _stream(request, state, read, start),
            media_type=SSE,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    found = await _at_database(state, lambda _: read(after))
    return EventPage(
        events=[FollowedEvent(**e) for e in found],
        next=found[-1]["cursor"] if found else after,
    )


async def _at_database(state: ApiState, work: Any) -> Any:
    """`work(session)` in a thread, in its turn at the database (`DatabaseGate`)."""

    def run() -> Any:
        with state.db.transaction() as session:
            return work(session)

    async with state.gate.turn():
        return await run_in_threadpool(run)


async def _stream(
    request: Request, state: ApiState, read: Any, start: str | None
) -> AsyncIterator[bytes]:
    cursor, said = start, time.monotonic()
    yield b"retry: 2000\n\n"
    while not await request.is_disconnected():
        async with state.gate.turn():
            found = await run_in_threadpool(read, cursor)
        for event in found:
            cursor = event["cursor"]
            data = json.dumps(event, separators=(",", ":"))
            yield f"id: {cursor}\nevent: {event['type']}\ndata: {data}\n\n".encode()
        if found:
            said = time.monotonic()
        elif time.monotonic() - said >= KEEPALIVE_S:
            said = time.monotonic()
            yield b": keep-alive\n\n"
        if not found:
            await asyncio.sleep(POLL_S)


# -- webhooks -------------------------------------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://ops.example/hooks/streamfleet",
                 "events": ["restream.state", "restream.input_switch"]}
            ]
        }
    )  # fmt: skip

    url: str = Field(description="http or https: where each event is POSTed.")
    events: list[EventType] = Field(
        default_factory=list, description="The event types wanted (none: every one)."
    )
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=128,
        description="Signs each delivery (HMAC-SHA256); none: one is made and shown once.",
    )


class WebhookPatch(BaseModel):
    url: str | None = None
    events: list[EventType] | None = None
    active: bool | None = None
    secret: str | None = Field(None, min_length=16, max_length=128)


class WebhookOut(BaseModel):
    id: str
    project_id: str
    url: str
    events: list[EventType]
    active: bool
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="Signs each delivery: shown this once.")


class DeliveryOut(BaseModel):
    id: int
    event_id: int
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_at: datetime | None = Field(description="The next attempt (pending only).")
    give_up_at: datetime
    last_at: datetime | None
    last_status: int | None = Field(description="The HTTP status the endpoint last answered.")
    last_response: str | None = Field(description="The start of its last answer's body.")
    last_error: str | None


def _webhook(row: Webhook) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "url": row.url,
        "events": row.kinds,
        "active": row.active,
        "created_at": row.created_at,
    }


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        type=row.body.get("type", ""),
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        next_at=row.next_at if row.state == "pending" else None,
        give_up_at=row.give_up_at,
        last_at=row.last_at,
        last_status=row.last_status,
        last_response=row.last_response,
        last_error=row.last_error,
    )


HOOKS = "/projects/{project_id}/webhooks"


@router.post(HOOKS, status_code=201)
def create_webhook(
    project_id: str, body: WebhookIn, session: SessionDep, principal: BearerPrincipal
) -> NewWebhookOut:
    """A project's endpoint for its events (admin)."""
    hook = webhooks.create(
        session, principal, project_id, url=body.url, kinds=body.events, secret=body.secret
    )
    return NewWebhookOut(**_webhook(hook), secret=hook.secret)


@router.get(HOOKS)
def list_webhooks(
    project_id: str, session: SessionDep, principal: BearerPrincipal
) -> list[WebhookOut]:
    return [WebhookOut(**_webhook(h)) for h in webhooks.listing(session, principal, project_id)]


@router.get(HOOKS + "/{webhook_id}")
def get_webhook(
    project_id: str, webhook_id: str, session: SessionDep, principal: BearerPrincipal
) -> WebhookOut:
    return WebhookOut(**_webhook(webhooks.get(session, principal, project_id, webhook_id)))


@router.patch(HOOKS + "/{webhook_id}")
def change_webhook(
    project_id: str,
    webhook_id: str,
    body: WebhookPatch,
    session: SessionDep,
    principal: BearerPrincipal,
) -> WebhookOut:
    hook = webhooks.get(session, principal, project_id, webhook_id)
    if body.url is not None:
        hook.url = webhooks.checked_url(body.url)
    if body.events is not None:
        hook.kinds = webhooks.checked_kinds(body.events)
    if body.active is not None:
        hook.active = body.active
    if body.secret is not None:
        hook.secret = body.secret
    return WebhookOut(**_webhook(hook))


@router.delete(HOOKS + "/{webhook_id}", status_code=204)
def remove_webhook(
    project_id: str, webhook_id: str, session: SessionDep, principal: BearerPrincipal
) -> Response:
    session.delete(webhooks.get(session, principal, project_id, webhook_id))
    return Response(status_code=204)


@router.get(HOOKS + "/{webhook_id}/deliveries")
def list_deliveries(
    project_id: str,
    webhook_id: str,
    session: SessionDep,
    principal: BearerPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """Its newest deliveries first, each with what the endpoint last answered."""
    found = webhooks.deliveries(session, principal, project_id, webhook_id, limit=limit)
    return [_delivery(d) for d in found]
