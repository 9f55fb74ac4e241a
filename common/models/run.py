from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, utc_timestamp


class Run(Base):
    """One placement of a restream on a node (one generation), with its restarts there."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("restream_id", "generation", name="uq_runs_restream_generation"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    restream_id: Mapped[str] = mapped_column(
        ForeignKey("restreams.id", ondelete="CASCADE"), index=True
    )
    node_name: Mapped[str] = mapped_column(String(128))
    generation: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = utc_timestamp()
    running_at: Mapped[datetime | None] = utc_timestamp(nullable=True, now=False)
    ended_at: Mapped[datetime | None] = utc_timestamp(nullable=True, now=False)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stderr_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
