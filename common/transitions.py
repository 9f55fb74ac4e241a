"""A declared transition table: which state may follow which. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from common.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class TransitionTable(Generic[S]):
    """The allowed moves of one kind of thing (a restream, a node)."""

    def __init__(self, kind: str, allowed: Mapping[S, Iterable[S]]) -> None:
        self.kind = kind
        self._allowed = {source: frozenset(targets) for source, targets in allowed.items()}

    def allows(self, current: S, target: S) -> bool:
        return target in self._allowed.get(current, frozenset())

    def check(self, current: S, target: S) -> None:
        """Raise `IllegalTransition` unless `current -> target` is declared."""
        if not self.allows(current, target):
            raise IllegalTransition(self.kind, current.value, target.value)

    def sources_of(self, target: S) -> frozenset[S]:
        """Every state from which `target` may be reached (for compare-and-set updates)."""
        return frozenset(s for s, targets in self._allowed.items() if target in targets)
