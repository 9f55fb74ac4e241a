"""What the restreams placed on a node (or not yet stopped there) hold: CPU, U30 load and
listen ports, as placement weighs them. Statements, and what their rows sum to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from common.definitions.states import HOLDING_PHASES
from common.models import Restream
from common.nodes.capacity import U30_ENGINES, U30Load, Usage


def usage_statement() -> Select[Any]:
    """What the restreams placed on each node (or not yet stopped there) hold, summed by the
    database: (node, U30 device, millicores, one sum per U30 engine) rows."""
    engines = [func.sum(Restream.u30_load[e].as_integer()).label(e) for e in U30_ENGINES]
    return (
        select(
            Restream.node_name.label("node"),
            Restream.u30_device.label("device"),
            func.sum(Restream.reserved_millicores).label("millicores"),
            *engines,
        )
        .where(Restream.node_name.is_not(None), Restream.phase.in_(HOLDING_PHASES))
        .group_by(Restream.node_name, Restream.u30_device)
    )


def usage_by_node(session: Session) -> dict[str, Usage]:
    """CPU per node and U30 load per device of what is placed, in one statement."""
    return usage_from_rows(session.execute(usage_statement()).all())


def usage_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, Usage]:
    """`usage_statement`'s rows, summed per node."""
    cpu: dict[str, int] = {}
    u30: dict[str, dict[int, U30Load]] = {}
    for node, device, millicores, *loads in rows:
        cpu[node] = cpu.get(node, 0) + int(millicores or 0)
        if device is not None:
            u30.setdefault(node, {})[device] = U30Load(*(int(v or 0) for v in loads))
    return {node: Usage(cpu[node], u30.get(node, {})) for node in cpu}


def port_holdings() -> Select[str | None, str | None, str]:
    """The listen ports restreams hold: (node, "2035/UDP", restream id) rows."""
    return select(Restream.node_name, Restream.listen_port, Restream.id).where(
        Restream.node_name.is_not(None),
        Restream.phase.in_(HOLDING_PHASES),
        Restream.listen_port.is_not(None),
    )


def ports_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, str]]:
    """(node, port, holder) rows — `port_holdings`' and the servers' — as node ->
    {"2035/UDP": holder}."""
    ports: dict[str, dict[str, str]] = {}
    for node, port, restream_id in rows:
        if node is not None and port is not None:
            ports.setdefault(node, {})[port] = restream_id
    return ports
