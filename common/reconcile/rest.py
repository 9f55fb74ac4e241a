"""A farm at rest: the rounds that would only find what the last one found are not run.

A round reads everything (a transaction of seven statements, and Redis) to find, on a farm at
rest, that every node answers and runs what it should. Most of a reconciler's CPU went there.
Before a round, `Rest.unchanged` reads the nodes' leases from Redis (one round trip, which the
round needs anyway); the round is not run when all of these hold:

- the last full round was at rest: it did nothing, no node was silent or unjudged, no
  restream was stopping (the only phase whose age the plan weighs);
- PostgreSQL has told of no statement writing a restream, a node or a server since that
  round began (`streamfleet_farm`, `common.wakeups`: a trigger on each table, sent when the
  writing transaction commits). A write that changes nothing counts all the same. While
  nothing listens (connecting, or a pooler that does not keep LISTEN), every round runs;
- the nodes as Redis shows them are the same: the same holders, addresses, capabilities and
  running generations, and none stopped answering (only the renewal times differ);
- no schedule is due;
- a full round ran less than `longest_s` ago: whatever this reasoning missed, a full round
  comes all the same.

The plan (`common.reconcile.plan`) is a function of those inputs and of time, and time alone
changes a plan only for a stopping restream, a silent node or a schedule, all excluded above.
A change committed a moment before a check whose notification has not arrived yet is seen by
the next round: a round later, as if it had been committed just after.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from common import live
from common.definitions.states import NodeState
from common.reconcile.plan import NodeView
from common.wakeups import Channel

LONGEST_S = 10.0  # a full round at least this often, at rest or not


def fingerprint(views: Sequence[NodeView]) -> tuple[Any, ...]:
    """The nodes as a plan sees them, without the renewal times that change every second."""
    return tuple(
        (
            v.name,
            v.state,
            v.silence,
            None
            if v.lease is None
            else (v.lease.holder, v.lease.address, v.lease.capabilities, v.lease.running),
        )
        for v in views
    )


@dataclass
class Rest:
    changes: Channel  # `streamfleet_farm`: woken when a statement wrote what a round reads
    longest_s: float = LONGEST_S
    resting: bool = False  # the last full round was at rest
    views: tuple[NodeView, ...] = ()  # the nodes as it saw them
    ran_at: float = -float("inf")  # monotonic time of the last full round
    due_at: float | None = None  # monotonic time a schedule is due

    def begin(self) -> None:
        """A full round begins: what changes from now on, the next check must see."""
        self.resting = False
        self.changes.clear()

    def record(self, views: Sequence[NodeView], *, at_rest: bool, next_due_s: float | None) -> None:
        """A full round ended: what it saw, and whether it was at rest."""
        now = time.monotonic()
        self.ran_at = now
        self.resting = at_rest
        self.views = tuple(views)
        self.due_at = None if next_due_s is None else now + next_due_s

    def unchanged(self, client: redis.Redis) -> live.FarmReading | None:
        """Redis's reading of the nodes, when nothing in PostgreSQL changed since the last
        full round at rest and no round is due; None when a full round must run."""
        now = time.monotonic()
        if not self.resting or now - self.ran_at >= self.longest_s:
            return None
        if self.due_at is not None and now >= self.due_at:
            return None
        if not self.changes.listening or self.changes.woken():
            return None
        return live.read_farm(client, [name for name, _ in self.node_rows])

    @property
    def node_rows(self) -> list[tuple[str, NodeState]]:
        """The nodes the last full round read from PostgreSQL: name, state."""
        return [(v.name, v.state) for v in self.views]

    def same_nodes(self, views: Sequence[NodeView]) -> bool:
        return fingerprint(views) == fingerprint(self.views)
