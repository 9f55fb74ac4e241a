from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, utc_timestamp


class Event(Base):
    """Append-only history: one row per state change of a restream or a node, with why.

    Not a foreign key to its subject, so that the history outlives a removed restream.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject_kind", "subject_id", "id"),
        Index("ix_events_position", "position", unique=True),
        Index("ix_events_unsequenced", "id", postgresql_where=text("position IS NULL")),
        Index("ix_events_project", "project_id", "position"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = utc_timestamp()
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(128))
    project_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    node_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "state" (from_state → to_state), "input_switch" (continuity), "note" (anything else).
    kind: Mapped[str] = mapped_column(String(32), server_default="note")
    # Its place in the feed, given once it is committed (`common.events.sequence`): readers
    # follow positions, so an event committed late comes later, never behind their cursor.
    position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
