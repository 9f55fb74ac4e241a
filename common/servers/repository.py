"""Queries of media server modules. The lifecycle (`common.lifecycle.servers`) writes them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, bindparam, case, literal, select
from sqlalchemy.orm import Session

from common.definitions.server import ServerKind, server_source
from common.models import Server


def get(
    session: Session,
    server_id: str,
    project_id: str | None,
    *,
    kind: ServerKind | None = None,
    for_update: bool = False,
) -> Server | None:
    """One server, of `project_id` (None: of any) and of `kind` (None: of either)."""
    statement = select(Server).where(Server.id == server_id)
    if project_id is not None:
        statement = statement.where(Server.project_id == project_id)
    if kind is not None:
        statement = statement.where(Server.kind == kind)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def all_in(session: Session, project_id: str | None, kind: ServerKind | None) -> Sequence[Server]:
    statement = select(Server).order_by(Server.created_at, Server.id)
    if project_id is not None:
        statement = statement.where(Server.project_id == project_id)
    if kind is not None:
        statement = statement.where(Server.kind == kind)
    return session.execute(statement).scalars().all()


def name_taken(
    session: Session, project_id: str, kind: ServerKind, name: str, *, besides: str | None = None
) -> bool:
    statement = select(Server.id).where(
        Server.project_id == project_id, Server.kind == kind, Server.name == name
    )
    if besides is not None:
        statement = statement.where(Server.id != besides)
    return session.execute(statement.limit(1)).first() is not None


def wanted(session: Session, *, for_update: bool = False) -> Sequence[Server]:
    """Every server that should run, or still has a node."""
    statement = (
        select(Server)
        .where(Server.active.is_(True) | Server.node_name.is_not(None))
        .order_by(Server.created_at, Server.id)
    )
    if for_update:
        statement = statement.with_for_update(skip_locked=True)
    return session.execute(statement).scalars().all()


# Built once: the reconciler asks both every second, and building them cost more than running.
_UNSETTLED = (
    select(Server.id)
    .where(
        (Server.active.is_(True) & Server.node_name.is_(None))
        | (Server.active.is_(False) & Server.node_name.is_not(None))
        | (
            Server.node_name.is_not(None)
            & Server.node_name.not_in(bindparam("held", expanding=True))
        )
    )
    .limit(1)
)
_PORT_HOLDINGS = select(
    Server.node_name,
    Server.spec["port"].astext + "/" + case((Server.kind == ServerKind.SRT, "UDP"), else_="TCP"),
    literal("server ") + Server.id,
).where(Server.active.is_(True), Server.node_name.is_not(None))


def unsettled(session: Session, held: set[str]) -> bool:
    """Whether any server wants placing or unplacing: wanted without a node, not wanted
    with one, or on a node without a lease (`held`: the nodes with one)."""
    return session.execute(_UNSETTLED, {"held": sorted(held)}).first() is not None


def placed_on(session: Session, node: str) -> Sequence[Server]:
    """The servers `node` should run."""
    return (
        session.execute(
            select(Server)
            .where(Server.node_name == node, Server.active.is_(True))
            .order_by(Server.id)
        )
        .scalars()
        .all()
    )


def holdings(session: Session) -> list[tuple[str, str, str]]:
    """What placed servers hold: (server_source(id), node, port key) each."""
    return [
        (server_source(holder.removeprefix("server ")), node, port)
        for node, port, holder in session.execute(port_holdings()).all()
        if node is not None and port is not None
    ]


def port_holdings() -> Select[str | None, str | None, str]:
    """The ports placed servers hold, as restream listen ports are held: (node, "9000/UDP",
    "server <id>") rows."""
    return _PORT_HOLDINGS
