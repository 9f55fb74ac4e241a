"""Live videos and their destinations (the Gjirafa VP model), made of restreams.

A live video is a restream whose input is an ingest the farm owns — RTMP or SRT listening on
a port of `live_video_ports`, behind a generated stream key — and whose one output is the
node's relay. Each destination is a restream of its own that reads that relay
(INPUT_TYPE_RELAY) on the same node and pushes to one platform: switching a destination on
or off starts or stops its own FFmpeg and nothing else. Never commits.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from sqlalchemy.orm import Session

from common.accounts.principal import Principal
from common.definitions.checks import build, split_url
from common.definitions.kinds import InputType, OutputType
from common.definitions.restream import (
    InputSpec,
    ListenPort,
    OutputSpec,
    RestreamDefinition,
    TranscodingSpec,
)
from common.definitions.states import Surface
from common.errors import Conflict, FieldProblem, InvalidInput, NotFound
from common.lifecycle import service, views
from common.lifecycle.placement_lock import lock_placement
from common.lifecycle.service import Farm
from common.models import Restream
from common.restreams import repository

TITLE = "title"  # the attribute holding the title as the client gave it


class Ingest(StrEnum):
    RTMP = "rtmp"
    SRT = "srt"


INGEST_INPUTS = {Ingest.RTMP: InputType.RTMP_LISTEN, Ingest.SRT: InputType.SRT_LISTEN}
# The destination's URL scheme decides how it is pushed.
DESTINATION_OUTPUTS: dict[str, OutputType] = {
    "rtmp": OutputType.OTHER_RTMP_URL,
    "rtmps": OutputType.OTHER_RTMP_URL,
    "srt": OutputType.SRT_URL,
    "rtsp": OutputType.RTSP_URL,
    "rtsps": OutputType.RTSP_URL,
    "udp": OutputType.UDP_URL,
    "http": OutputType.HTTP_URL,
    "https": OutputType.HTTP_URL,
}


class VideoNotFound(NotFound):
    def __init__(self, video_id: str) -> None:
        super().__init__(f"live video {video_id} not found")


class DestinationNotFound(NotFound):
    def __init__(self, number: int | str) -> None:
        super().__init__(f"restream {number} not found")


def is_video(restream: Restream) -> bool:
    """A live video: what this surface created that no other restream feeds."""
    return restream.surface == Surface.GJIRAFA and restream.source_id is None


def title_of(restream: Restream) -> str:
    return str(restream.attributes.get(TITLE, restream.name))


@dataclass(frozen=True)
class NewVideo:
    title: str
    ingest: Ingest = Ingest.RTMP
    transcoding: TranscodingSpec | None = None


@dataclass(frozen=True)
class NewDestination:
    title: str
    stream_url: str
    stream_key: str | None = None
    active: bool = True


def create_video(session: Session, farm: Farm, principal: Principal, new: NewVideo) -> Restream:
    """A live video, started: it listens for its publisher as soon as it is placed."""
    lock_placement(session)  # ports are handed out one caller at a time
    port = _free_port(session, farm)
    definition = build(
        RestreamDefinition,
        input=InputSpec(
            input_type=INGEST_INPUTS[new.ingest],
            input_stream_listen_port=ListenPort(port=port),
            input_stream_key=secrets.token_urlsafe(24),
        ),
        transcoding=new.transcoding,
        outputs=[OutputSpec(output_type=OutputType.RELAY)],
    )
    return service.create(
        session,
        farm,
        principal,
        _unique_name(session, principal, f"live video {new.title}"),
        definition,
        active=True,
        surface=Surface.GJIRAFA,
        attributes={TITLE: new.title},
    )


def video(session: Session, principal: Principal, video_id: str) -> Restream:
    """The live video; another project's, or a restream that is no live video, is not found."""
    restream = repository.get(session, video_id, principal.project_id)
    if restream is None or not is_video(restream):
        raise VideoNotFound(video_id)
    return restream


def remove_video(session: Session, principal: Principal, video_id: str) -> None:
    """The live video and every destination of it."""
    video(session, principal, video_id)
    service.remove(session, principal, video_id)


def add_destination(
    session: Session, farm: Farm, principal: Principal, video_id: str, new: NewDestination
) -> Restream:
    """A destination of the live video, pushed to its URL (and stream key) while active."""
    source = video(session, principal, video_id)
    scheme = split_url(new.stream_url.strip(), "streamUrl").scheme.lower()
    output_type = DESTINATION_OUTPUTS.get(scheme)
    if output_type is None:
        allowed = ", ".join(sorted(DESTINATION_OUTPUTS))
        message = f"streamUrl scheme must be one of {allowed} (got {scheme or 'none'!r})"
        raise InvalidInput(message, [FieldProblem("streamUrl", message)])
    try:
        output = OutputSpec(
            output_type=output_type,
            output_stream_url=new.stream_url,
            output_stream_key=new.stream_key,
        )
    except ValidationError as error:
        problems = [FieldProblem(_field(e["msg"]), _message(e["msg"])) for e in error.errors()]
        raise InvalidInput("; ".join(p.message for p in problems), problems) from error
    definition = RestreamDefinition(
        input=InputSpec(input_type=InputType.RELAY, input_relay_id=source.id), outputs=[output]
    )
    return service.create(
        session,
        farm,
        principal,
        _unique_name(session, principal, f"{title_of(source)} to {new.title}"),
        definition,
        active=new.active,
        surface=Surface.GJIRAFA,
        attributes={TITLE: new.title},
    )


def all_videos(session: Session, principal: Principal) -> list[tuple[Restream, int]]:
    """The project's live videos, oldest first, each with its number of destinations."""
    restreams = repository.all_in(session, principal.project_id)
    counts = Counter(r.source_id for r in restreams if r.source_id is not None)
    return [(r, counts[r.id]) for r in restreams if is_video(r)]


@dataclass(frozen=True)
class IngestPoint:
    """Where the publisher of a live video sends it: `server` and `stream_key` (what an
    encoder asks for), or `publish_url`, both together. None until the video is placed."""

    protocol: Ingest
    stream_key: str
    server: str | None
    publish_url: str | None


def ingest_of(restream: Restream, now: views.Live) -> IngestPoint:
    definition = service.definition_of(restream)
    spec = definition.input
    protocol = next(i for i, t in INGEST_INPUTS.items() if t is spec.input_type)
    key = spec.input_stream_key or ""
    publish = now.ingest_url(restream, definition)
    server = None
    if publish is not None:
        server = publish.split("?", 1)[0] if protocol is Ingest.SRT else publish.rsplit("/", 1)[0]
    return IngestPoint(protocol, key, server, publish)


def destinations(session: Session, principal: Principal, video_id: str) -> Sequence[Restream]:
    return repository.followers(session, video(session, principal, video_id).id)


def destination(session: Session, principal: Principal, number: int) -> Restream:
    """A destination by its number; another project's, or no destination, is not found."""
    restream = repository.by_number(session, number, principal.project_id)
    if restream is None or restream.source_id is None:
        raise DestinationNotFound(number)
    return restream


def toggle(session: Session, farm: Farm, principal: Principal, number: int) -> Restream:
    """Switch a destination on if it is off, off if it is on; the others never notice."""
    restream = destination(session, principal, number)
    if restream.active:
        return service.stop(session, principal, restream.id)
    return service.start(session, farm, principal, restream.id)


def remove_destination(session: Session, principal: Principal, number: int) -> None:
    service.remove(session, principal, destination(session, principal, number).id)


def _field(message: str) -> str:
    return "output_stream_key" if "output_stream_key" in message else "output_stream_url"


def _message(message: str) -> str:
    return message.removeprefix("Value error, ")


def _free_port(session: Session, farm: Farm) -> int:
    """The lowest port of the range that no restream of the farm listens on."""
    taken = repository.listen_ports(session)
    for port in farm.settings.live_video_port_range:
        if port not in taken:
            return port
    raise Conflict(
        f"every port of STREAMFLEET_LIVE_VIDEO_PORTS ({farm.settings.live_video_ports}) is "
        "taken: remove a live video or widen the range"
    )


def _unique_name(session: Session, principal: Principal, wanted: str) -> str:
    """Titles may repeat; restream names may not: the first free of `wanted`, `wanted (2)`..."""
    project_id = principal.project_id
    assert project_id is not None  # the Gjirafa surface always acts within one project
    name, count = wanted[:180], 1
    while repository.name_taken(session, project_id, name):
        count += 1
        name = f"{wanted[:180]} ({count})"
    return name
