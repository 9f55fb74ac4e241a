"""Request-scoped dependencies: the transaction, the live farm view, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from common.config import Settings
from common.db import Database
from common.restreams.service import Farm


@dataclass
class ApiState:
    settings: Settings
    db: Database
    redis: redis.Redis
    celery: Any


# Trivial dependencies are `async def`: FastAPI runs them inline on the event loop instead of
# handing each to the thread pool (a thread hop per dependency on every request).
async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.streamfleet
    return state


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (scope=function).
    Kept on the request too, so that a route which answers an error can roll it back."""
    state: ApiState = request.app.state.streamfleet
    with state.db.transaction() as session:
        request.state.session = session
        yield session


def request_session(request: Request) -> Session | None:
    """The request's transaction, if one of its dependencies opened it."""
    session: Session | None = getattr(request.state, "session", None)
    return session


async def get_farm(request: Request) -> Farm:
    state: ApiState = request.app.state.streamfleet
    return Farm(redis=state.redis, settings=state.settings)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
FarmDep = Annotated[Farm, Depends(get_farm)]
StateDep = Annotated[ApiState, Depends(api_state)]
