"""Derived features at serving time: compiled expressions over a vector's other values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dataintel.config.deployments.snapshot import ConfigSnapshot


@dataclass(frozen=True, eq=False)
class DerivedFeature:
    name: str
    version: int
    entity_key: str
    expression: str
    names: frozenset[str]  # value names it reads
    compiled: Any


def compile_derived(snapshot: ConfigSnapshot) -> list[DerivedFeature]:
    """The enabled derived features of a deployed snapshot, compiled, in dependency order."""
    return []


def evaluate_derived(
    feature: DerivedFeature,
    values: Mapping[str, Any],
    times: Mapping[str, int | None],
    t_us: int,
) -> tuple[Any, bool]:
    """(value, ok): ok is False when the expression failed at run time (status error)."""
    return None, False
