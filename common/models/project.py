from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, utc_timestamp


class Project(Base):
    """A tenant: every restream and project credential belongs to exactly one."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = utc_timestamp()
