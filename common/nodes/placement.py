"""Which node runs a restream: filter by what it needs, then pick by policy. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from common.nodes.capabilities import Requirements

Policy = Literal["spread", "pack"]


@dataclass(frozen=True)
class Candidate:
    """A live, active node as placement sees it."""

    name: str
    address: str
    encoders: frozenset[str]
    load: int  # restreams placed on it


@dataclass(frozen=True)
class Placed:
    node: str
    address: str


@dataclass(frozen=True)
class Unplaced:
    reason: str  # in words an operator can act on


def place(
    needs: Requirements, candidates: Sequence[Candidate], policy: Policy = "spread"
) -> Placed | Unplaced:
    """Pick a node for a restream, or say why none fits."""
    if not candidates:
        return Unplaced("no live worker node: start one with `streamfleet worker`")
    fitting = [c for c in candidates if needs.encoders <= c.encoders]
    if not fitting:
        missing = sorted(needs.encoders - set().union(*(c.encoders for c in candidates)))
        if missing:
            return Unplaced(f"no live node's FFmpeg has the encoder {', '.join(missing)}")
        return Unplaced(
            f"no single live node's FFmpeg has all of {', '.join(sorted(needs.encoders))}"
        )
    # Spread: least loaded first; pack: most loaded first. Ties go by name, for determinism.
    sign = 1 if policy == "spread" else -1
    best = min(fitting, key=lambda c: (sign * c.load, c.name))
    return Placed(node=best.name, address=best.address)
