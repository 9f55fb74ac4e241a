from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from common.models.base import Base, utc_timestamp


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`)."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "xid8"


ischema_names["xid8"] = Xid8  # so that reflection (Alembic's check) knows the type


class Event(Base):
    """Append-only history: one row per state change of a restream or a node, with why.

    Not a foreign key to its subject, so that the history outlives a removed restream.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject_kind", "subject_id", "id"),
        Index("ix_events_followed", "tx", "id"),
        Index("ix_events_project", "project_id", "tx", "id"),
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
    # The writing transaction. Followed in (tx, id) order up to the oldest transaction still
    # open (`common.events.page`): no event can appear behind a reader's cursor later.
    tx: Mapped[int] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
