"""The native surface's nodes: `/v1/nodes`, their capacity, drain and undrain, their events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import BearerPrincipal
from api.deps import FarmDep, SessionDep
from api.errors import surface_route
from api.surfaces.native import ERRORS, event_out, render_error
from api.surfaces.native_models import EventOut, NodeOut
from common import events
from common.definitions.node import NodeCapabilities
from common.lifecycle import nodes

router = APIRouter(prefix="/v1", tags=["native"], responses=ERRORS)
router.route_class = surface_route(render_error)


@router.get("/nodes")
def list_nodes(session: SessionDep, farm: FarmDep, principal: BearerPrincipal) -> list[NodeOut]:
    return [_node_out(view) for view in nodes.overview(session, farm.redis, principal)]


def _node_out(view: nodes.NodeView) -> NodeOut:
    node, lease = view.node, view.lease
    capabilities = (
        lease.capabilities if lease else NodeCapabilities.model_validate(node.capabilities)
    )
    return NodeOut(
        name=node.name,
        state=node.state.value,
        live=lease is not None,
        address=lease.address if lease else None,
        capabilities=capabilities.model_dump(mode="json"),
        running=len(lease.running) if lease else 0,
        lease_renewed_at=lease.renewed_at if lease else None,
        lease_holder=(lease.holder or None) if lease else None,
        capacity=nodes.capacity_view(capabilities, view.usage),
    )


@router.post("/nodes/{name}/drain", status_code=202)
def drain_node(
    name: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> NodeOut:
    """No new restreams on this node; its restreams move to other nodes (stop, then start)."""
    return _node_out(nodes.view(session, farm.redis, nodes.drain(session, principal, name)))


@router.post("/nodes/{name}/undrain")
def undrain_node(
    name: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> NodeOut:
    """Back in service: the node takes new restreams again."""
    return _node_out(nodes.view(session, farm.redis, nodes.undrain(session, principal, name)))


@router.get("/nodes/{name}/events")
def node_events(
    name: str,
    session: SessionDep,
    principal: BearerPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    node = nodes.get(session, principal, name)
    return [event_out(e) for e in events.history(session, events.NODE, node.name, limit=limit)]
