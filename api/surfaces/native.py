"""The native surface, `/v1`: resource-oriented REST with API keys (`Authorization: Bearer`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from api.auth import BearerPrincipal
from api.deps import FarmDep, SessionDep, reads_only
from api.errors import error_responses, surface_route
from api.surfaces.native_models import (
    EventOut,
    NativeError,
    RestreamIn,
    RestreamOut,
    RestreamPage,
    RestreamPatch,
    StatsOut,
)
from common import events, idempotency
from common.definitions.checks import build
from common.definitions.restream import (
    InputSpec,
    RestreamDefinition,
)
from common.definitions.states import RestreamState, Surface
from common.errors import FieldProblem, InvalidInput, StreamfleetError
from common.lifecycle import schedules, service, views
from common.lifecycle.service import Farm
from common.models import Event, Restream
from common.restreams.filters import Filters
from common.restreams.repository import Listed


def render_error(error: StreamfleetError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": error.code,
                "message": error.message,
                "problems": [{"field": p.field, "message": p.message} for p in error.problems],
            }
        },
        status_code=error.status,
        headers=error.headers,
    )


PAGE_MAX = 1000  # restreams in one page of the list
ON_A_NODE = Filters(on_a_node=True)

ERRORS = error_responses(
    NativeError,
    {
        401: "No credential, or an unknown, expired or revoked one.",
        403: "The credential may not do this.",
        404: "No such resource (or one of another project).",
        409: "A conflict with the farm's state: a name or a port taken.",
        413: "The body or the URL is too large.",
        422: "Invalid input: `problems` names each field.",
        503: "PostgreSQL or Redis unreachable, or busy (then with Retry-After).",
    },
)
router = APIRouter(prefix="/v1", tags=["native"], responses=ERRORS)
router.route_class = surface_route(render_error)


def _item(restream: views.Row, now: views.Live) -> dict[str, Any]:
    """A restream as the native API shows it (`RestreamOut`'s fields)."""
    shown = views.shown(restream)
    return {
        "id": restream.id,
        "project_id": restream.project_id,
        "name": restream.name,
        "restream_type": shown.restream_type,
        "active": restream.active,
        "state": restream.state.value,
        "state_reason": restream.state_reason,
        "last_error": now.last_error(restream),
        "node": restream.node_name,
        "generation": restream.generation,
        "revision": restream.revision,
        "ingest_url": now.ingest_url(restream, shown.definition),
        "input": shown.input,
        "inputs": shown.inputs,
        "continuity": shown.continuity,
        "transcoding": shown.transcoding,
        "outputs": shown.outputs,
        "node_selector": shown.definition.node_selector,
        "schedule": schedules.of(restream),
        "created_at": restream.created_at,
        "modified_at": restream.modified_at,
        "state_changed_at": restream.state_changed_at,
    }


def _one(restream: Restream, farm: Farm) -> RestreamOut:
    return RestreamOut(**_item(restream, views.read(farm.redis, [restream])))


def event_out(row: Event) -> EventOut:
    return EventOut(
        id=row.id,
        at=row.at,
        from_state=row.from_state,
        to_state=row.to_state,
        reason=row.reason,
        node=row.node_name,
        generation=row.generation,
    )


def _inputs(
    given: InputSpec | None, inputs: list[InputSpec] | None
) -> tuple[InputSpec | None, InputSpec | None]:
    """`input`, or `inputs: [primary, backup]`: the primary and the backup (None: none)."""
    if given is not None and inputs is not None:
        problem = FieldProblem("inputs", "give input or inputs, not both")
        raise InvalidInput("input and inputs both given", [problem])
    if inputs is not None:
        return inputs[0], inputs[1] if len(inputs) > 1 else None
    return given, None


@router.post(
    "/restreams",
    status_code=201,
    responses={201: {"headers": {"ETag": {"description": "Its revision."}}}},
)
def create_restream(
    body: RestreamIn,
    *,
    session: SessionDep,
    farm: FarmDep,
    principal: BearerPrincipal,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=idempotency.HEADER,
            description="Send the create again with the same key (within 24 h) and get what "
            "the first made, not a second restream; the same key with another body: 409.",
        ),
    ] = None,
) -> RestreamOut:
    if idempotency_key is not None:
        asked = idempotency.fingerprint(body.model_dump_json().encode())
        first = idempotency.claim(session, principal.subject, idempotency_key, asked)
        if first is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return _with_etag(response, _one(service.get(session, principal, first), farm))
    primary, backup = _inputs(body.input, body.inputs)
    if primary is None:
        raise InvalidInput("missing input", [FieldProblem("input", "give input or inputs")])
    definition = build(
        RestreamDefinition,
        input=primary,
        backup_input=backup,
        continuity=body.continuity,
        transcoding=body.transcoding,
        outputs=body.outputs,
        node_selector=body.node_selector,
    )
    restream = service.create(
        session,
        farm,
        principal,
        body.name,
        definition,
        active=body.active,
        surface=Surface.NATIVE,
        schedule=body.schedule,
    )
    if idempotency_key is not None:
        idempotency.made(session, principal.subject, idempotency_key, restream.id)
    return _with_etag(response, _one(restream, farm))


def _with_etag(response: Response, restream: RestreamOut) -> RestreamOut:
    response.headers["ETag"] = f'"{restream.revision}"'
    return restream


def _if_match(given: str | None) -> frozenset[int] | None:
    """The revisions an `If-Match` names (None: any, or none asked). Compared strongly, as
    RFC 9110 wants for If-Match: a weak tag (`W/"3"`) matches nothing."""
    if given is None or given.strip() == "*":
        return None
    found = set()
    for tag in (t.strip() for t in given.split(",")):
        weak = tag.startswith("W/")
        value = tag.removeprefix("W/")
        if len(value) < 3 or value[0] != '"' or value[-1] != '"' or not value[1:-1].isdigit():
            message = 'ETags this API gave, such as "3" (a list: "3", "4")'
            raise InvalidInput(f"If-Match: {message}", [FieldProblem("If-Match", message)])
        if not weak:
            found.add(int(value[1:-1]))
    return frozenset(found)


@router.get("/restreams", response_model=RestreamPage)
@reads_only
def list_restreams(
    *,
    session: SessionDep,
    farm: FarmDep,
    principal: BearerPrincipal,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    state: Annotated[RestreamState | None, Query(description="Only those showing it.")] = None,
    node: Annotated[str | None, Query(max_length=128, description="Only those on it.")] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="Only those whose name contains it.")
    ] = None,
    project_id: Annotated[
        str | None, Query(max_length=24, description="Only that project's (farm-wide keys).")
    ] = None,
) -> Response:
    """A page of restreams, oldest first, with the filters given.

    Plain rows, each made into its JSON directly, and again only when what it shows
    changed: a page of 500 as 500 models, validated and serialised in turn, took longer than
    the rest of the request together."""
    filters = Filters(state=state, node=node, name=name, project_id=project_id)
    rows, total = service.page(session, principal, limit=limit, offset=offset, filters=filters)
    now = views.read(farm.redis, rows)
    items = b",".join(_item_json(row, now) for row in rows)
    rest = to_json({"total": total, "limit": limit, "offset": offset})  # {"total": …}
    return Response(b'{"items":[' + items + b"]," + rest[1:], media_type="application/json")


# A list's items as JSON, by restream: made again when its row's version, or what Redis adds
# to it, changed.
_rendered: views.Kept[tuple[tuple[object, ...], bytes]] = views.Kept()


def _item_json(row: Listed, now: views.Live) -> bytes:
    key = (row.version, now.last_error(row), now.ingest_url(row, views.shown(row).definition))
    kept = _rendered.get(row.id)
    if kept is not None and kept[0] == key:
        return kept[1]
    made = to_json(_item(row, now))
    _rendered.put(row.id, (key, made))
    return made


@router.get(
    "/restreams/{restream_id}",
    response_model=RestreamOut,
    responses={200: {"headers": {"ETag": {"description": "Its revision, for If-Match."}}}},
)
@reads_only
def get_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> Response:
    """Made as a list's item is (the same JSON, kept while it shows the same): a client
    polling one restream pays for reading its row, not for building and checking a model."""
    row = service.get_listed(session, principal, restream_id)
    return Response(
        _item_json(row, views.read(farm.redis, [row])),
        media_type="application/json",
        headers={"ETag": f'"{row.revision}"'},
    )


@router.patch(
    "/restreams/{restream_id}",
    responses={
        200: {"headers": {"ETag": {"description": "Its new revision."}}},
        412: {"model": NativeError, "description": "If-Match names a revision it no longer has."},
    },
)
def patch_restream(
    restream_id: str,
    body: RestreamPatch,
    *,
    session: SessionDep,
    farm: FarmDep,
    principal: BearerPrincipal,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(description='Its ETag as last read ("3"): refused with 412 if it changed since.'),
    ] = None,
) -> RestreamOut:
    """Change what is given, leave the rest (`schedule: null` removes it)."""
    expected = _if_match(if_match)
    definition = None
    fields = body.model_fields_set
    if fields & {"input", "inputs", "continuity", "transcoding", "outputs", "node_selector"}:
        old = service.definition_of(service.get(session, principal, restream_id))
        primary, backup = _inputs(body.input, body.inputs)
        if "input" in fields and "inputs" not in fields:
            backup = old.backup_input  # a new primary keeps its backup
        elif primary is None:
            primary, backup = old.input, old.backup_input
        definition = build(
            RestreamDefinition,
            input=primary,
            backup_input=backup,
            continuity=body.continuity if "continuity" in fields else old.continuity,
            transcoding=body.transcoding if "transcoding" in fields else old.transcoding,
            outputs=body.outputs if body.outputs is not None else old.outputs,
            node_selector=(body.node_selector if "node_selector" in fields else old.node_selector),
        )
    changes = service.Changes(
        name=body.name,
        definition=definition,
        active=body.active,
        schedule=body.schedule,
        clear_schedule="schedule" in fields and body.schedule is None,
        if_revisions=expected,
    )
    changed = service.update(session, farm, principal, restream_id, changes)
    return _with_etag(response, _one(changed, farm))


@router.delete("/restreams/{restream_id}", status_code=204)
def delete_restream(restream_id: str, session: SessionDep, principal: BearerPrincipal) -> Response:
    service.remove(session, principal, restream_id)
    return Response(status_code=204)


@router.post("/restreams/{restream_id}/start", status_code=202)
def start_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> RestreamOut:
    return _one(service.start(session, farm, principal, restream_id), farm)


@router.post("/restreams/{restream_id}/restart", status_code=202)
def restart_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> RestreamOut:
    """Run it anew (a fresh FFmpeg, a new generation) if it runs; else start it."""
    return _one(service.restart(session, farm, principal, restream_id), farm)


@router.post("/restreams/{restream_id}/stop", status_code=202)
def stop_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> RestreamOut:
    return _one(service.stop(session, principal, restream_id), farm)


@router.get("/restreams/{restream_id}/stats")
@reads_only
def restream_stats(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> StatsOut:
    restream = service.get(session, principal, restream_id)
    now = views.read(farm.redis, [restream])
    return _stats(restream, now)


def _stats(restream: views.Row, now: views.Live) -> StatsOut:
    return StatsOut(
        restream_id=restream.id,
        state=restream.state.value,
        live=now.of(restream),
        playback=now.playback(restream, views.shown(restream).definition),
    )


@router.get("/live")
@reads_only
def live_statistics(
    session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> list[StatsOut]:
    """The live statistics of every restream of the caller's placed on a node, however many:
    one call for a console's whole table."""
    placed, _ = service.page(session, principal, limit=None, offset=0, filters=ON_A_NODE)
    now = views.read(farm.redis, placed)
    return [_stats(row, now) for row in placed]


@router.get("/restreams/{restream_id}/events")
def restream_events(
    restream_id: str,
    session: SessionDep,
    principal: BearerPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    restream = service.get(session, principal, restream_id)
    return [
        event_out(e) for e in events.history(session, events.RESTREAM, restream.id, limit=limit)
    ]
