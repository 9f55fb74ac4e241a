from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.definitions.states import Phase, RunState, ShowsState
from common.models.base import Base, enum_column, utc_timestamp


class Restream(Base, ShowsState):
    """A restream: its definition, what the control plane wants of it, and what its FFmpeg
    is observed to do.

    Desired (the API): `definition`, `active`, `holds`. Control plane
    (`common.lifecycle.commands` alone): `phase` with its reason and time, the placement
    (`node_name`, `generation`) and what it reserves on its node. Observed (its worker's
    reports alone, compare-and-set on `generation`): the `run_*` columns and `last_error`.
    `state` is neither: the pure view of both that surfaces show (`ShowsState`).
    """

    __tablename__ = "restreams"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_restreams_project_name"),)

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    # An integer id too, for the API surfaces whose clients expect one (Gjirafa, 5centsCDN).
    number: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    # A restream fed by another's relay (a live video's destination) names its source; it
    # goes where its source goes, and with it.
    source_id: Mapped[str | None] = mapped_column(
        ForeignKey("restreams.id", ondelete="CASCADE"), nullable=True, index=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    # A restream reading a server module's stream (its definition's `input_server_id`): it
    # runs on that server's node. Not a foreign key: a removed server leaves its readers
    # waiting, saying so, rather than gone.
    server_id: Mapped[str | None] = mapped_column(String(24), nullable=True, index=True)
    # What an API surface keeps about a restream that the farm never reads (a Gjirafa title,
    # a 5centsCDN stream's parts): the surface's own words, returned as they were given.
    attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    name: Mapped[str] = mapped_column(String(200))
    # The surface that created it, and what holds it (common.definitions.states: Surface, Hold).
    surface: Mapped[str] = mapped_column(String(16), default="native", server_default="native")
    holds: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), default=list, server_default=text("'{}'")
    )
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # What the API last made of it: one more with every change a client asked for (its
    # definition, name, schedule, whether it should run). Its ETag, checked by If-Match.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    node_name: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.name", ondelete="SET NULL"), nullable=True, index=True
    )
    reserved_millicores: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    u30_device: Mapped[int | None] = mapped_column(Integer, nullable=True)
    u30_load: Mapped[dict[str, int] | None] = mapped_column(JSONB, nullable=True)
    listen_port: Mapped[str | None] = mapped_column(String(16), nullable=True)
    phase: Mapped[Phase] = mapped_column(
        enum_column(Phase, "restream_phase"), default=Phase.IDLE, index=True
    )
    phase_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    phase_changed_at: Mapped[datetime] = utc_timestamp()
    # The last report about the FFmpeg of generation `run_generation` (None: none yet).
    run_state: Mapped[RunState | None] = mapped_column(
        enum_column(RunState, "run_state"), nullable=True
    )
    run_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_changed_at: Mapped[datetime | None] = utc_timestamp(nullable=True, now=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Its schedule (common.lifecycle.schedules): started at `start_at` and stopped at
    # `stop_at`, each once; every run lasts at most `run_for_s` (it sets `stop_at` at a start).
    start_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    stop_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    run_for_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = utc_timestamp()
    modified_at: Mapped[datetime] = utc_timestamp()
