"""Create, change, start, stop and remove restreams: the rules every API surface shares.

Services never commit: the request (or task) scope owns the transaction, and the control
messages they enqueue leave only after that commit (`common.outbox`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
from sqlalchemy.orm import Session

from common.accounts.principal import Principal, Role
from common.accounts.service import ensure_project
from common.config import Settings
from common.definitions.kinds import LOCAL_FILE_SCHEMES, SERVER_MODULE_INPUTS, InputType, OutputType
from common.definitions.restream import RestreamDefinition
from common.definitions.schedule import Schedule
from common.definitions.server import ServerKind, input_stream, server_source
from common.definitions.states import Hold, Phase, Surface
from common.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    Held,
    InvalidInput,
    PreconditionFailed,
    RestreamNotFound,
)
from common.ids import new_id, random_id
from common.lifecycle import commands, nodes, schedules, views
from common.lifecycle.placement_lock import lock_placement
from common.models import Restream
from common.nodes.capabilities import requirements
from common.nodes.placement import Placed, Unplaced, Wanted, plan_placements
from common.restreams import repository
from common.restreams.filters import EVERY, Filters
from common.servers import repository as servers


@dataclass(frozen=True)
class Farm:
    """The live side a service call may need: Redis (leases, stats) and the settings."""

    redis: redis.Redis
    settings: Settings


@dataclass(frozen=True)
class Changes:
    """A partial update: None leaves a field as it is."""

    name: str | None = None
    definition: RestreamDefinition | None = None
    active: bool | None = None
    attributes: dict[str, object] | None = None  # replaces the surface's attributes
    holds: frozenset[Hold] | None = None  # replaces its holds; any hold stops it
    schedule: Schedule | None = None  # replaces its schedule
    clear_schedule: bool = False  # no schedule any more
    if_revisions: frozenset[int] | None = None  # refused (412) unless it is at one of these


def require(principal: Principal, role: Role) -> None:
    allowed = {Role.VIEWER: set(Role), Role.OPERATOR: {Role.OPERATOR, Role.ADMIN}}.get(
        role, {Role.ADMIN}
    )
    if principal.role not in allowed:
        raise Forbidden(f"a {principal.role.value} credential cannot do this; needs {role.value}")


def project_of(session: Session, farm: Farm, principal: Principal) -> str:
    """The project what a principal creates belongs to: its own, or (farm-wide credentials)
    the farm's default project."""
    return principal.project_id or ensure_project(session, farm.settings.default_project_name).id


def check_supported(definition: RestreamDefinition, settings: Settings) -> None:
    """Refuse what the schema accepts but this farm cannot or may not run, saying so."""
    spec = definition.input
    url = spec.input_stream_url or ""
    if urlsplit(url).scheme.lower() in LOCAL_FILE_SCHEMES and not settings.allow_local_files:
        raise InvalidInput(
            "input_stream_url: reading local files is not allowed on this farm "
            "(an operator can allow it with STREAMFLEET_ALLOW_LOCAL_FILES)",
            [FieldProblem("input.input_stream_url", "local files are not allowed")],
        )


def stored(definition: RestreamDefinition) -> dict[str, object]:
    """The definition as stored: every input and output carries its own id, a random one
    (an output's names its playback path: it must not be guessable from the restream's)."""
    if definition.input.id is None:
        definition.input.id = random_id()
    for output in definition.outputs:
        if output.id is None:
            output.id = random_id()
    return definition.model_dump(mode="json", exclude_none=True)


def definition_of(restream: Restream) -> RestreamDefinition:
    return RestreamDefinition.model_validate(restream.definition)


def get(session: Session, principal: Principal, restream_id: str) -> Restream:
    restream = repository.get(session, restream_id, principal.project_id)
    if restream is None:
        raise RestreamNotFound(restream_id)
    return restream


def get_listed(session: Session, principal: Principal, restream_id: str) -> repository.Listed:
    """One restream as lists read it (`repository.Listed`)."""
    found = repository.one_listed(session, restream_id, principal.project_id)
    if found is None:
        raise RestreamNotFound(restream_id)
    return found


def page(
    session: Session,
    principal: Principal,
    *,
    limit: int | None,
    offset: int,
    filters: Filters = EVERY,
) -> tuple[list[repository.Listed], int]:
    return views.page(session, principal.project_id, limit=limit, offset=offset, filters=filters)


def count(session: Session, principal: Principal) -> int:
    return repository.count(session, principal.project_id)


def list_all(session: Session, principal: Principal) -> Sequence[Restream]:
    return repository.all_in(session, principal.project_id)


def summaries(session: Session, principal: Principal) -> list[repository.Summary]:
    return repository.summaries(session, principal.project_id)


def create(
    session: Session,
    farm: Farm,
    principal: Principal,
    name: str,
    definition: RestreamDefinition,
    *,
    active: bool,
    surface: Surface = Surface.NATIVE,
    attributes: dict[str, object] | None = None,
    holds: frozenset[Hold] = frozenset(),
    schedule: Schedule | None = None,
) -> Restream:
    """A new restream of the project, created by `surface`; started if `active` (and not
    held), or when its `schedule` says."""
    require(principal, Role.OPERATOR)
    check_supported(definition, farm.settings)
    _refuse_early_start(active, schedule)
    project_id = project_of(session, farm, principal)
    if repository.name_taken(session, project_id, name):
        raise Conflict(f"a restream named {name!r} already exists in this project")
    restream = Restream(
        id=new_id(),
        project_id=project_id,
        name=name,
        definition=stored(definition),
        source_id=_source_of(session, project_id, definition),
        server_id=_server_of(session, project_id, definition),
        attributes=attributes or {},
        surface=surface.value,
        holds=sorted(holds),
        active=False,
        generation=0,
        phase=Phase.IDLE,
    )
    session.add(restream)
    session.flush()
    if schedule is not None:
        schedules.assign(session, restream, schedule)
    if active:
        _start(session, farm, restream, "created active")
    return restream


def update(
    session: Session, farm: Farm, principal: Principal, restream_id: str, changes: Changes
) -> Restream:
    require(principal, Role.OPERATOR)
    restream = _locked(session, principal, restream_id)
    if changes.if_revisions is not None and restream.revision not in changes.if_revisions:
        raise PreconditionFailed(
            f"restream {restream.id} is at revision {restream.revision}, not the one If-Match "
            "names: changed since it was read; read it again"
        )
    restream.revision += 1
    if changes.name is not None and changes.name != restream.name:
        if repository.name_taken(session, restream.project_id, changes.name, except_id=restream.id):
            raise Conflict(f"a restream named {changes.name!r} already exists in this project")
        restream.name = changes.name
    if changes.definition is not None:
        check_supported(changes.definition, farm.settings)
        new_definition = stored(_keep_ids(changes.definition, definition_of(restream)))
        if new_definition != restream.definition:
            restream.source_id = _source_of(session, restream.project_id, changes.definition)
            restream.server_id = _server_of(session, restream.project_id, changes.definition)
            restream.definition = new_definition
            if _placed(restream):  # run anew once gone from there: never two copies
                commands.move(session, restream, "definition changed")
    if changes.attributes is not None:
        restream.attributes = dict(changes.attributes)
    if changes.holds is not None:
        restream.holds = sorted(changes.holds)
        if changes.holds:
            commands.want_stopped(session, restream, f"held: {', '.join(restream.holds)}")
    if changes.clear_schedule or changes.schedule is not None:
        _refuse_early_start(changes.active is True, changes.schedule)
        schedules.assign(session, restream, changes.schedule)
    restream.modified_at = datetime.now(UTC)
    if changes.active is True:
        _start(session, farm, restream, "start requested")
    elif changes.active is False:
        commands.want_stopped(session, restream, "stop requested")
    return restream


def start(session: Session, farm: Farm, principal: Principal, restream_id: str) -> Restream:
    """Want the restream running. Idempotent: starting a started restream changes nothing."""
    require(principal, Role.OPERATOR)
    restream = _locked(session, principal, restream_id)
    check_supported(definition_of(restream), farm.settings)
    restream.revision += 1
    _start(session, farm, restream, "start requested")
    return restream


def restart(session: Session, farm: Farm, principal: Principal, restream_id: str) -> Restream:
    """Run it anew (a new generation, a fresh FFmpeg) if it is placed; else start it."""
    require(principal, Role.OPERATOR)
    restream = _locked(session, principal, restream_id)
    check_supported(definition_of(restream), farm.settings)
    restream.revision += 1
    if _placed(restream):  # run anew once gone from there: never two copies
        restream.active = True
        commands.move(session, restream, "restart requested")
    else:
        _start(session, farm, restream, "restart requested")
    return restream


def stop(session: Session, principal: Principal, restream_id: str) -> Restream:
    """Want the restream stopped. Idempotent."""
    require(principal, Role.OPERATOR)
    restream = _locked(session, principal, restream_id)
    restream.revision += 1
    commands.want_stopped(session, restream, "stop requested")
    return restream


def remove(session: Session, principal: Principal, restream_id: str) -> None:
    """Delete the restream and those its relay feeds; their FFmpeg, if any, is stopped after
    the commit."""
    require(principal, Role.OPERATOR)
    restream = _locked(session, principal, restream_id)
    for gone in [*repository.followers(session, restream.id, for_update=True), restream]:
        commands.discard(session, gone)  # followers first: the database would cascade them


def place_now(session: Session, farm: Farm, restream: Restream) -> Unplaced | None:
    """Place a restream that wants a node right away (an API start): lock, look, and let the
    planner the reconciler uses too (`plan_placements`) decide; why not, if no node fits.

    Its own changes so far (wanted, PENDING, an event) are not flushed for the reads: they
    change no node's holdings (a restream wanting a node holds none), and written once with
    the placement's, at the commit, they cost one UPDATE and one INSERT, not two of each."""
    with session.no_autoflush:
        return _place_now(session, farm, restream)


def _place_now(session: Session, farm: Farm, restream: Restream) -> Unplaced | None:
    lock_placement(session)
    running: dict[str, str] = {}
    source_id = restream.source_id
    if source_id is not None:
        source = repository.get(session, source_id, None)
        if source is not None and source.node_name is not None and source.phase is Phase.PLACED:
            running[source.id] = source.node_name
    elif restream.server_id is not None:
        source_id = server_source(restream.server_id)
        server = servers.get(session, restream.server_id, None)
        if server is not None and server.active and server.node_name is not None:
            running[source_id] = server.node_name
    wanted = Wanted(restream.id, requirements(definition_of(restream)), source_id)
    candidates = nodes.candidates(session, farm.redis)
    [decision] = plan_placements([wanted], candidates, running, farm.settings.placement_policy)
    if isinstance(decision.result, Placed):
        commands.assign(
            session, restream, decision.result.node, decision.needs, decision.result.u30_device
        )
        return None
    commands.keep_waiting(session, restream, decision.result.reason)
    return decision.result


def _source_of(session: Session, project_id: str, definition: RestreamDefinition) -> str | None:
    """The restream whose relay feeds this one (INPUT_TYPE_RELAY): of the same project, with a
    relay output."""
    if definition.input.input_type is not InputType.RELAY:
        return None
    source_id = definition.input.input_relay_id
    assert source_id is not None  # guaranteed by InputSpec validation
    source = repository.get(session, source_id, project_id)
    problem = FieldProblem("input.input_relay_id", "no such restream with a relay output")
    if source is None:
        raise InvalidInput(f"input_relay_id: no restream {source_id} in this project", [problem])
    if not any(o.output_type is OutputType.RELAY for o in definition_of(source).outputs):
        raise InvalidInput(f"input_relay_id: restream {source_id} has no relay output", [problem])
    return source_id


def _server_of(session: Session, project_id: str, definition: RestreamDefinition) -> str | None:
    """The server module a server input reads (input_server_id): of the same project and of
    its kind, with a stream id that names it (or none: its only stream)."""
    spec = definition.input
    if spec.input_type not in SERVER_MODULE_INPUTS:
        return None
    kind = ServerKind.SRT if spec.input_type.value.startswith("INPUT_TYPE_SRT") else ServerKind.RTMP
    server_id = (spec.input_server_id or "").strip().lower()
    server = servers.get(session, server_id, project_id, kind=kind) if server_id else None
    if server is None:
        message = f"no {kind.value.upper()} server {server_id or '(none given)'} in this project"
        raise InvalidInput(
            f"input_server_id: {message}", [FieldProblem("input.input_server_id", message)]
        )
    try:
        stream = input_stream(kind, server.name, spec.input_stream_id)
        if not stream and kind is ServerKind.RTMP:
            raise ValueError("required for an RTMP server: the key its publisher uses")
    except ValueError as error:
        raise InvalidInput(
            f"input_stream_id: {error}", [FieldProblem("input.input_stream_id", str(error))]
        ) from error
    return server.id


def _keep_ids(new: RestreamDefinition, old: RestreamDefinition) -> RestreamDefinition:
    """Inputs and outputs sent back without ids keep the ids they had (matched by position)."""
    if new.input.id is None:
        new.input.id = old.input.id
    for output, previous in zip(new.outputs, old.outputs, strict=False):
        if output.id is None:
            output.id = previous.id
    return new


def _locked(session: Session, principal: Principal, restream_id: str) -> Restream:
    restream = repository.lock(session, restream_id, principal.project_id)  # and the time
    if restream is None:
        raise RestreamNotFound(restream_id)
    return restream


def _start(session: Session, farm: Farm, restream: Restream, reason: str) -> None:
    _refuse_held(session, restream)
    if not commands.want_running(session, restream, reason):
        return
    refused = place_now(session, farm, restream)
    if refused is not None and refused.kind == "port":
        # A port is not freed by waiting: refuse the start (the transaction rolls back).
        raise Conflict(refused.reason)


def _refuse_early_start(active: bool, schedule: Schedule | None) -> None:
    if active and schedule is not None and schedule.start_at is not None:
        problem = FieldProblem("active", "it starts at schedule.start_at: leave active out")
        raise InvalidInput("a restream with a start time is not started now", [problem])


def _refuse_held(session: Session, restream: Restream) -> None:
    """A hold keeps it from running, whichever surface asks: say which, and where to lift it."""
    reason = commands.held_reason(session, restream)
    if reason is not None:
        raise Held(reason)


def _placed(restream: Restream) -> bool:
    """Its FFmpeg may run on its node: to change it, stop it there first (`commands.move`)."""
    return restream.phase is Phase.PLACED or commands.holds_node(restream)
