"""From a restream placed on this node to a `Job` its supervisor can run: where it runs (its
`Placement`: addresses, directories, relay ports, its U30 device), whether its source already
has the codec asked for, and its FFmpeg command line."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

from sqlalchemy.orm import object_session

from common.config import Settings
from common.definitions.kinds import FILE_OUTPUTS, LISTEN_INPUTS, InputType, OutputType
from common.definitions.restream import RestreamDefinition
from common.definitions.server import input_stream, input_url
from common.ffmpeg.argv import build_argv, input_args, resolve_source_codec
from common.ffmpeg.continuity import runner_spec
from common.ffmpeg.outputs import hls_dir, needs_clean_end, needs_meter
from common.ffmpeg.placement import Placement
from common.ffmpeg.probe import FfmpegCapabilities, source_video_codec
from common.lifecycle.commands import reservation_of
from common.lifecycle.service import definition_of
from common.logs import about
from common.models import Restream
from common.servers import repository as servers
from worker.job import Job
from worker.relay import RelayHub

log = logging.getLogger(__name__)


def workdirs(definition: RestreamDefinition, placement: Placement) -> tuple[str, ...]:
    """The directories its outputs write into on this node (HLS and DASH)."""
    return tuple(
        hls_dir(placement, output)
        for output in definition.outputs
        if output.output_type in FILE_OUTPUTS
    )


def pulled_source(definition: RestreamDefinition) -> str | None:
    """The URL the restream pulls its input from, if it pulls one (not a listener, a relay or
    a generated signal)."""
    spec = definition.input
    if spec.input_type in LISTEN_INPUTS or spec.input_type is InputType.RELAY:
        return None
    return spec.input_stream_url


@dataclass(frozen=True)
class Launch:
    """What a start needs from the restream's row (read in the start's transaction)."""

    restream_id: str
    generation: int
    definition: RestreamDefinition
    placement: Placement
    row: Restream


@dataclass
class Launcher:
    settings: Settings
    ffmpeg: FfmpegCapabilities
    relay: RelayHub
    node: str
    # Where OUTPUT_TYPE_LOCAL_RTMP_URL publishes: the node's own server, or the one configured.
    local_rtmp_url: str | None = None
    # Where OUTPUT_TYPE_LOCAL_RTSP_URL publishes: the node's own server, or the one configured.
    local_rtsp_url: str | None = None

    def prepare(self, restream: Restream) -> Launch:
        """Its placement here, with the relay ports it writes to or reads from."""
        definition = definition_of(restream)
        generation = restream.generation
        placement = Placement(
            node_name=self.node,
            node_address=self.settings.node_address,
            hw_device=restream.u30_device,
            restream_id=restream.id,
            listen_address=self.settings.listen_address,
            media_dir=self.settings.media_dir,
            local_rtmp_url=self.local_rtmp_url,
            local_rtsp_url=self.local_rtsp_url,
            relay_port=self._relay_port(definition, restream.id, generation),
            server_url=self._server_url(restream, definition),
            meter_port=(
                self.relay.source_port(restream.id, generation) if needs_meter(definition) else None
            ),
        )
        return Launch(restream.id, generation, definition, placement, restream)

    def _server_url(self, restream: Restream, definition: RestreamDefinition) -> str | None:
        """What a server input reads: its server's stream, if the server runs on this node
        (read in the start's transaction)."""
        session = object_session(restream)
        if restream.server_id is None or session is None:
            return None
        server = servers.get(session, restream.server_id, None)
        if server is None or not server.active or server.node_name != self.node:
            return None
        spec = server.settings
        stream = input_stream(spec.kind, spec.name, definition.input.input_stream_id)
        return input_url(spec, stream)

    def job(self, launch: Launch) -> Job:
        """The job to run (raises ValueError or OSError when no command can be built)."""
        definition = self._with_source_codec(launch)
        clean_end = needs_clean_end(definition)
        period_s = self.settings.progress_period_s or self.ffmpeg.progress_period_s(
            clean_end=clean_end
        )
        if definition.continuity is not None:
            return self._continuity_job(launch, definition, period_s)
        argv = [
            self.ffmpeg.binary,
            *build_argv(definition, launch.placement, progress_period_s=period_s),
        ]
        reservation = reservation_of(launch.row)
        return Job(
            launch.restream_id,
            launch.generation,
            argv,
            # A relay input waits for its source as a listen input waits for its publisher.
            listens=definition.input.input_type in (*LISTEN_INPUTS, InputType.RELAY),
            listen_key=definition.input.input_stream_key,
            outputs=len(definition.outputs),
            cpu_millicores=reservation.cpu_millicores,
            u30_device=reservation.u30_device,
            u30_encoder_units=reservation.u30.encoder if reservation.u30 else 0,
            workdirs=workdirs(definition, launch.placement),
            source=pulled_source(definition) or launch.placement.server_url,
            clean_end=clean_end,
        )

    def _continuity_job(
        self, launch: Launch, definition: RestreamDefinition, period_s: float
    ) -> Job:
        """Its stages, switch and output stage as one process (`worker.continuity`)."""
        spec = runner_spec(
            definition,
            launch.placement,
            ffmpeg=self.ffmpeg.binary,
            progress_period_s=period_s,
            allow_private=self.settings.outbound_private,
        )
        reservation = reservation_of(launch.row)
        return Job(
            launch.restream_id,
            launch.generation,
            [sys.executable, "-m", "worker.continuity", json.dumps(spec)],
            outputs=len(definition.outputs),
            cpu_millicores=reservation.cpu_millicores,
            workdirs=workdirs(definition, launch.placement),
            clean_end=needs_clean_end(definition),
        )

    def _with_source_codec(self, launch: Launch) -> RestreamDefinition:
        """Copy instead of encoding when the source already has the codec asked for."""
        definition = launch.definition
        transcoding = definition.transcoding
        if transcoding is None or transcoding.copy_when_source_is is None:
            return definition
        codec = source_video_codec(self.ffmpeg.binary, input_args(definition, launch.placement))
        context = about(launch.restream_id, generation=launch.generation, node=self.node)
        log.info("source video codec: %s", codec, extra=context)
        return resolve_source_codec(definition, codec)

    def _relay_port(
        self, definition: RestreamDefinition, restream_id: str, generation: int
    ) -> int | None:
        """The relay port a restream writes to (a source) or reads from (fed by a source)."""
        source = definition.input.input_relay_id
        if definition.input.input_type is InputType.RELAY and source is not None:
            return self.relay.subscribe(source, restream_id, generation)
        if any(o.output_type is OutputType.RELAY for o in definition.outputs):
            return self.relay.source_port(restream_id, generation)
        return None
