"""How a restream reads to its clients, where PostgreSQL's row and Redis's live statistics
meet: one rule for each such value, whatever surface renders it."""

from __future__ import annotations

from common.live import RestreamStats
from common.models import Restream


def last_error(restream: Restream, stats: RestreamStats | None) -> str | None:
    """Why its last attempt ended (PostgreSQL's, reported by its worker); while it runs, the
    last line its FFmpeg logged at error level (the live statistics')."""
    return restream.last_error or (stats.last_error if stats else None)
