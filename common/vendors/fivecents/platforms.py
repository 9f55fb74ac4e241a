"""A stream's platforms: destinations fed by the stream's relay on its node, each a restream
of its own, so that switching one on or off touches nothing else."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from common.accounts.principal import Principal
from common.definitions.checks import split_url
from common.definitions.kinds import InputType, OutputType
from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition
from common.definitions.states import Hold, Surface
from common.errors import FieldProblem, InvalidInput
from common.lifecycle import service
from common.lifecycle.service import Farm
from common.models import Restream
from common.restreams import repository
from common.vendors.fivecents.model import PlatformFields, PlatformNotFound, holds_of
from common.vendors.fivecents.streams import platform_active, stream, unique_name


def platform(session: Session, principal: Principal, number: int, platform_number: int) -> Restream:
    source = stream(session, principal, number)
    restream = repository.by_number(session, platform_number, principal.project_id)
    if restream is None or restream.source_id != source.id:
        raise PlatformNotFound(platform_number)
    return restream


def add_platform(
    session: Session, farm: Farm, principal: Principal, number: int, fields: PlatformFields
) -> Restream:
    source = stream(session, principal, number)
    if not fields.url:
        problem = FieldProblem("platform.rtmp", "required: the platform's ingest URL")
        raise InvalidInput("missing platform[rtmp]", [problem])
    attributes = _platform_merge({}, fields)
    host = split_url(attributes["url"], "platform.rtmp").hostname
    name = f"{source.name} to {attributes['name'] or host}"
    holds = frozenset({Hold.DISABLED}) if fields.disabled else frozenset()
    schedule = fields.schedule
    return service.create(
        session,
        farm,
        principal,
        unique_name(session, source.project_id, name),
        _platform_definition(source, attributes),
        active=platform_active(source, holds, schedule.start_at if schedule else None),
        surface=Surface.FIVECENTS,
        attributes=attributes,
        holds=holds,
        schedule=schedule,
    )


def update_platform(
    session: Session,
    farm: Farm,
    principal: Principal,
    number: int,
    platform_number: int,
    *,
    fields: PlatformFields,
) -> Restream:
    current = platform(session, principal, number, platform_number)
    source = stream(session, principal, number)
    attributes = _platform_merge(dict(current.attributes), fields)
    holds = holds_of(current)
    if fields.disabled is not None:
        holds = holds | {Hold.DISABLED} if fields.disabled else holds - {Hold.DISABLED}
    start_at = current.start_at
    if fields.schedule is not None or fields.clear_schedule:
        start_at = fields.schedule.start_at if fields.schedule else None
    changes = service.Changes(
        definition=_platform_definition(source, attributes),
        active=platform_active(source, holds, start_at),
        attributes=attributes,
        holds=holds,
        schedule=fields.schedule,
        clear_schedule=fields.clear_schedule,
    )
    return service.update(session, farm, principal, current.id, changes)


def restart_platform(
    session: Session, farm: Farm, principal: Principal, number: int, platform_number: int
) -> Restream:
    current = platform(session, principal, number, platform_number)
    source = stream(session, principal, number)
    if not platform_active(source, holds_of(current)):
        raise InvalidInput(f"platform {platform_number} is disabled: it has nothing to restart")
    return service.restart(session, farm, principal, current.id)


def _platform_merge(attributes: dict[str, Any], fields: PlatformFields) -> dict[str, Any]:
    given = {
        "name": fields.name,
        "url": fields.url,
        "key": fields.key,
        "isSRT": fields.is_srt,
    }
    merged = {**attributes, **{k: v for k, v in given.items() if v is not None}}
    merged.setdefault("name", "")
    merged.setdefault("key", "")
    if fields.is_srt is None and (fields.url is not None or "isSRT" not in merged):
        url = str(merged.get("url", ""))
        merged["isSRT"] = split_url(url, "platform.rtmp").scheme == "srt"  # follows the URL
    return merged


def _platform_definition(source: Restream, attributes: dict[str, Any]) -> RestreamDefinition:
    url, key = str(attributes["url"]).strip(), str(attributes.get("key") or "").strip()
    try:
        if attributes.get("isSRT"):
            target = url if not key else f"{url}{'&' if '?' in url else '?'}streamid={key}"
            output = OutputSpec(output_type=OutputType.SRT_URL, output_stream_url=target)
        else:
            output = OutputSpec(
                output_type=OutputType.OTHER_RTMP_URL,
                output_stream_url=url,
                output_stream_key=key or None,
            )
    except ValidationError as error:
        problems = [
            FieldProblem("platform.rtmp", e["msg"].removeprefix("Value error, "))
            for e in error.errors()
        ]
        raise InvalidInput("; ".join(p.message for p in problems), problems) from error
    return RestreamDefinition(
        input=InputSpec(input_type=InputType.RELAY, input_relay_id=source.id), outputs=[output]
    )
