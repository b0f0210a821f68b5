"""``Port``: the typed token a port or service is provided and asked for by (see api/state.py
and dataintel.composition). Imports nothing, so any plane can declare its token cheaply."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Port(Generic[T]):
    """A typed key for one port or service; ``absent`` is the 503 detail when this process
    does not hold it (not started yet, or not part of its role)."""

    def __init__(self, name: str, absent: str) -> None:
        self.name = name
        self.absent = absent

    def __repr__(self) -> str:
        return f"Port({self.name!r})"
