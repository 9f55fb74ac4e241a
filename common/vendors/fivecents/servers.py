"""The farm's servers as 5centsCDN clients name them: nodes grouped by their `server` label,
else their `region` label; a stream's `server[mediaserver]` as a node selector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy.orm import Session

from common.definitions.node import NodeCapabilities
from common.errors import FieldProblem, InvalidInput
from common.models import Node
from common.nodes import repository as node_repository
from common.vendors.fivecents.model import PLAYBACK_SERVERS, Protocol, Server


def servers(session: Session) -> list[Server]:
    """The farm's servers: nodes grouped by their `server` label, else their `region` label."""
    found: dict[str, Server] = {}
    for node in node_repository.all_nodes(session):
        labels = _labels(node)
        label: Literal["server", "region"] = "server" if "server" in labels else "region"
        key = labels.get(label)
        if key is None:
            continue
        server = found.setdefault(key, Server(key, label, labels.get("region"), []))
        server.nodes.append(node.name)
    return sorted(found.values(), key=lambda s: (not s.id.isdigit(), s.id.zfill(12)))


def node_selector(session: Session, value: str | None) -> dict[str, list[str]] | None:
    """`server[mediaserver]` ("11,211", or region names) as a node selector; every value must
    name a server or a region of the farm."""
    wanted = [v.strip() for v in (value or "").split(",") if v.strip()]
    if not wanted:
        return None
    known = {s.id: s.label for s in servers(session)}
    regions = dict.fromkeys(_regions(session), "region")
    labelled = {**regions, **known}  # a server id wins over a region of the same name
    unknown = [v for v in wanted if v not in labelled]
    if unknown:
        message = (
            f"unknown server {', '.join(unknown)}: the farm's servers are "
            f"{', '.join(known) or 'none yet (label nodes with server= or region=)'}"
            + (f"; its regions {', '.join(sorted(regions))}" if regions else "")
        )
        raise InvalidInput(message, [FieldProblem("server", message)])
    selector: dict[str, list[str]] = {}
    for wanted_id in wanted:
        selector.setdefault(labelled[wanted_id], []).append(wanted_id)
    if len(selector) > 1:
        message = "give server ids or region names, not both"
        raise InvalidInput(message, [FieldProblem("server", message)])
    return selector


def _regions(session: Session) -> set[str]:
    """The `region` labels of the farm's nodes."""
    found = set()
    for node in node_repository.all_nodes(session):
        region = _labels(node).get("region")
        if region:
            found.add(region)
    return found


def check_playback(
    session: Session, protocols: Sequence[Protocol], selector: dict[str, list[str]] | None
) -> None:
    """RTMP and RTSP playback need one node of the selected servers with every such server
    the stream asks for."""
    needed = [p for p in protocols if p in PLAYBACK_SERVERS]
    if not needed:
        return
    offers = [
        NodeCapabilities.model_validate(n.capabilities) for n in node_repository.all_nodes(session)
    ]
    offers = [o for o in offers if _selected(o.labels, selector)]
    for protocol in needed:
        offers = [o for o in offers if getattr(o, PLAYBACK_SERVERS[protocol][0])]
        if not offers:
            where = "of the selected servers " if selector else ""
            servers_ = " and ".join(f"{p.value} server ({PLAYBACK_SERVERS[p][1]})" for p in needed)
            message = (
                f"{' and '.join(p.value for p in needed)} playback needs a node {where}with "
                f"its own {servers_}; none has {'them all' if len(needed) > 1 else 'one'}"
            )
            raise InvalidInput(message, [FieldProblem("protocols", message)])


def _labels(node: Node) -> dict[str, str]:
    """A node's labels: as its worker advertises them, else as last stored."""
    return NodeCapabilities.model_validate(node.capabilities).labels or dict(node.labels or {})


def _selected(labels: dict[str, str], selector: dict[str, list[str]] | None) -> bool:
    return all(labels.get(k) in values for k, values in (selector or {}).items())
