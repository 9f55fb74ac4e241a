"""A restream's schedule, as clients give it: start at a time, stop at a time, run for at most
a duration. What the control plane does with it is `common.lifecycle.schedules`."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_RUN_S = 31 * 24 * 3600


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_at: AwareDatetime | None = Field(
        None, description="Start it at this time (once), e.g. 2026-12-24T18:00:00Z."
    )
    stop_at: AwareDatetime | None = Field(
        None, description="Stop it at this time (once; any stop before it uses it up)."
    )
    duration_s: int | None = Field(
        None,
        gt=0,
        le=MAX_RUN_S,
        description="Every run lasts at most this long: each start sets a stop this far ahead.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        if self.start_at is None and self.stop_at is None and self.duration_s is None:
            raise ValueError("give start_at, stop_at or duration_s (or null for no schedule)")
        if self.stop_at is not None and self.duration_s is not None:
            raise ValueError("give stop_at or duration_s, not both")
        if self.start_at and self.stop_at and self.stop_at <= self.start_at:
            raise ValueError("stop_at must come after start_at")
        return self

    def past(self, now: datetime) -> dict[str, str]:
        """The times of it that are not in the future at `now`: field -> problem."""
        return {
            field: f"{value.isoformat()} is in the past (it is {now.isoformat()} now)"
            for field, value in (("start_at", self.start_at), ("stop_at", self.stop_at))
            if value is not None and value <= now
        }


class ScheduleView(BaseModel):
    """What is left of a restream's schedule, as it is shown."""

    start_at: datetime | None = Field(description="When it starts (each start time is used once).")
    stop_at: datetime | None = Field(
        description="When it stops: the time given, or this run's end by duration_s."
    )
    duration_s: int | None = Field(description="How long each run lasts at most.")
