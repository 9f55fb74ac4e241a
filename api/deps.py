"""Request-scoped dependencies: the transaction, the live farm view, the caller."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import redis
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from common.accounts.throttle import LoginThrottle
from common.config import Settings
from common.db import Database
from common.errors import BackendUnavailable
from common.lifecycle.service import Farm


class DatabaseGate:
    """At most `capacity` requests use the database at once; the others wait for their turn
    here, on the event loop, holding neither a thread nor a connection.

    Without it, a burst of requests that wait on one lock (50 starts waiting for the placement
    lock) took every connection and every worker thread: the request holding the lock could
    get no thread to commit on, and everything stalled until the pool gave up, 30 s later.
    With `capacity` at most the pool's size and below the thread pool's, a request that holds
    a connection always finds a thread to finish on.

    Requests that write take at most `capacity` less a quarter of it: the rest is kept for
    requests that only read (`turn(reads_only=True)`), which hold no lock anyone waits for.
    A burst of 50 starts, each waiting its turn at the farm-wide placement lock, made a list
    or a client's poll wait behind all of them (6 s on a slow machine); it now finds a turn
    at once.
    """

    def __init__(self, capacity: int, wait_s: float) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self.writes_capacity = capacity - max(1, capacity // 4)
        self._turns = asyncio.Semaphore(capacity)
        self._writes = asyncio.Semaphore(self.writes_capacity)

    @asynccontextmanager
    async def turn(self, *, reads_only: bool = False) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + self.wait_s
        gates = [(self._turns, self.capacity)]
        if not reads_only:
            gates.insert(0, (self._writes, self.writes_capacity))
        taken: list[asyncio.Semaphore] = []
        try:
            for gate, _ in gates:
                left_s = deadline - asyncio.get_running_loop().time()
                await asyncio.wait_for(gate.acquire(), max(left_s, 0))
                taken.append(gate)
        except TimeoutError:
            for gate in taken:
                gate.release()
            _, full = gates[len(taken)]
            raise BackendUnavailable(
                f"the API is busy: {full} requests have been using the database for "
                f"the last {self.wait_s:g} s; try again",
                retry_after_s=1,
            ) from None
        try:
            yield
        finally:
            for gate in taken:
                gate.release()


@dataclass
class ApiState:
    settings: Settings
    db: Database
    redis: redis.Redis
    celery: Any
    gate: DatabaseGate
    throttle: LoginThrottle


# Trivial dependencies are `async def`: FastAPI runs them inline on the event loop instead of
# handing each to the thread pool (a thread hop per dependency on every request).
async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.streamfleet
    return state


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_READS_ONLY = "__streamfleet_reads_only__"


def reads_only(endpoint: Endpoint) -> Endpoint:
    """Mark a route that only reads: its request's session (the caller's credential's too)
    runs each statement as it comes, outside a transaction (`Database.reading`): no BEGIN, no
    COMMIT, and no trip to a thread to commit — what a client polling a restream pays for most
    after the request itself. Its session refuses to write rows."""
    setattr(endpoint, _READS_ONLY, True)
    return endpoint


def in_one_trip(endpoint: Endpoint) -> Endpoint:
    """A route that is not `async def`, run with its transaction's commit (and so its control
    messages) in one trip to a worker thread; its answer is then checked on the event loop.

    FastAPI would take four trips for a write after its credential's: the route, the check of
    its answer, the surface's flush and the commit, each waking a thread and then the event
    loop again (0.1 to 0.3 ms each on a 2-core machine, more when it was idle); a start's or
    a stop's control message now leaves at the end of the route's own trip. An error raised
    by the route or by its commit reaches the surface's handler as before, which rolls the
    transaction back. A route marked `reads_only` has nothing to commit."""
    if inspect.iscoroutinefunction(endpoint):
        return endpoint
    commits = not getattr(endpoint, _READS_ONLY, False)

    def route_then_commit(**arguments: Any) -> Any:
        answer = endpoint(**arguments)
        if commits:
            for session in arguments.values():
                if isinstance(session, Session) and session.in_transaction():
                    session.commit()
        return answer

    @functools.wraps(endpoint)
    async def in_a_thread(**arguments: Any) -> Any:
        return await run_in_threadpool(route_then_commit, **arguments)

    return in_a_thread  # type: ignore[return-value]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent (scope=function),
    taken once the request's turn at the database came (`DatabaseGate`); statements outside
    a transaction for a route marked `reads_only`. Kept on the request too, so that a route
    which answers an error can roll it back."""
    state: ApiState = request.app.state.streamfleet
    if getattr(request.scope.get("endpoint"), _READS_ONLY, False):
        async with state.gate.turn(reads_only=True):
            with state.db.reading() as session:
                request.state.session = session
                yield session
        return
    async with state.gate.turn():
        with state.db.sessions() as session:  # no connection until its first statement
            request.state.session = session
            try:
                yield session
                if session.in_transaction():  # not committed by its route (`in_one_trip`)
                    await run_in_threadpool(session.commit)
            except BaseException:
                await run_in_threadpool(session.rollback)
                raise


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
