from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from common.models.base import Base, utc_timestamp


class IdempotencyKey(Base):
    """A create a client may repeat (`Idempotency-Key`): what it asked, and what it made."""

    __tablename__ = "idempotency_keys"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)  # the credential's
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the request
    resource_id: Mapped[str | None] = mapped_column(String(24), nullable=True)
    created_at: Mapped[datetime] = utc_timestamp()
