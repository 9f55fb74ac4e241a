"""The declarative base: one metadata for Alembic, with stable constraint names."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_timestamp(*, nullable: bool = False, now: bool = True) -> Mapped[datetime]:
    """A timezone-aware timestamp column, defaulting to the database's `now()`."""
    return mapped_column(
        DateTime(timezone=True), nullable=nullable, server_default=func.now() if now else None
    )


def enum_column(enum: type[StrEnum], name: str) -> Enum:
    """A string column restricted to the enum's values by a CHECK constraint."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
