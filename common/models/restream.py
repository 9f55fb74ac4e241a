from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
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

from common.definitions.states import RestreamState
from common.models.base import Base, enum_column, utc_timestamp


class Restream(Base):
    """A restream definition (desired state) and the summary of what is observed.

    Desired: `definition`, `active`. Placement (control plane): `node_name`, `generation`.
    Observed: `state`, `state_reason`, `last_error` — changed only through the declared
    transition table, compare-and-set on `generation`.
    Reservation (set with the placement, cleared with it): what it holds on its node.
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
    node_name: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.name", ondelete="SET NULL"), nullable=True, index=True
    )
    reserved_millicores: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    u30_device: Mapped[int | None] = mapped_column(Integer, nullable=True)
    u30_load: Mapped[dict[str, int] | None] = mapped_column(JSONB, nullable=True)
    listen_port: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state: Mapped[RestreamState] = mapped_column(
        enum_column(RestreamState, "restream_state"), default=RestreamState.IDLE, index=True
    )
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_changed_at: Mapped[datetime] = utc_timestamp()
    created_at: Mapped[datetime] = utc_timestamp()
    modified_at: Mapped[datetime] = utc_timestamp()
