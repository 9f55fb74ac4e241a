"""Placing media server modules in a reconcile round (the API's placement is tested through
the surfaces, tests/api/test_servers.py)."""

from __future__ import annotations

import redis

from common import live
from common.accounts.principal import Principal, Role
from common.accounts.service import ensure_project
from common.config import Settings
from common.db import Database
from common.definitions.server import ServerKind, ServerSpec
from common.lifecycle import servers
from common.lifecycle.service import Farm
from common.models import Server
from common.reconcile.run import reconcile
from tests.support.nodes import Offers, simulate_node

SERVES = Offers(server_kinds=("srt",))


def pending_on_port(db: Database, farm: Farm, port: int, projects: list[str]) -> list[str]:
    """One SRT server on `port` in each project, created while no node runs servers."""
    ids = []
    with db.transaction() as session:
        for name in projects:
            owner = Principal("p", Role.ADMIN, ensure_project(session, name).id)
            spec = ServerSpec(kind=ServerKind.SRT, name="studio", port=port)
            ids.append(servers.create(session, farm, owner, spec).id)
    return ids


def nodes_of(db: Database, ids: list[str]) -> list[str | None]:
    with db.transaction() as session:
        return [session.get(Server, i).node_name for i in ids]  # type: ignore[union-attr]


def test_a_round_gives_one_port_of_a_node_to_one_server(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    farm = Farm(redis_client, settings)
    ids = pending_on_port(db, farm, 9000, ["a", "b", "c"])
    assert nodes_of(db, ids) == [None, None, None]  # no node runs servers yet
    simulate_node(db, redis_client, "n1", offers=SERVES)
    simulate_node(db, redis_client, "n2", offers=SERVES)
    live.remember_since(redis_client, 3600)
    reconcile(db, redis_client, settings)
    placed = nodes_of(db, ids)
    assert sorted(n for n in placed if n) == ["n1", "n2"]  # the port once on each node
    with db.transaction() as session:
        waiting = session.get(Server, ids[placed.index(None)])
        assert waiting is not None
        assert "port 9000/UDP is taken" in (waiting.reason or "")
