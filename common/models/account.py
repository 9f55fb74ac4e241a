"""Who may call the API: users (login with a password) and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, utc_timestamp


class User(Base):
    """A person who logs in (Callaba-style `/api/auth/login`). No project = farm-wide."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[datetime] = utc_timestamp()


class ApiKey(Base):
    """A bearer credential. Only a hash of the secret is stored; the prefix finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = utc_timestamp()
    last_used_at: Mapped[datetime | None] = utc_timestamp(nullable=True, now=False)
    revoked_at: Mapped[datetime | None] = utc_timestamp(nullable=True, now=False)
