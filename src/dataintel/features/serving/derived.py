"""Derived features at serving time: compiled expressions over a vector's other values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dataintel.config.derived.validation import compile_all
from dataintel.errors import InvalidInput
from dataintel.model.expressions import CompiledExpression, EvalError, Scope
from dataintel.model.snapshot import ConfigSnapshot


@dataclass(frozen=True, eq=False)
class DerivedFeature:
    name: str
    version: int
    entity_key: str
    expression: str
    names: frozenset[str]  # value names it reads
    compiled: CompiledExpression


def compile_derived(snapshot: ConfigSnapshot) -> list[DerivedFeature]:
    """The enabled derived features of a deployed snapshot, compiled, in dependency order.
    (A deployed snapshot was checked at deploy; one that no longer compiles serves none.)"""
    try:
        ordered = compile_all(snapshot.features, snapshot.derived)
    except InvalidInput:
        return []
    return [
        DerivedFeature(d.name, d.version, d.entity_key, d.expression, c.names, c)
        for d, c in ordered
    ]


def context(t_us: int) -> dict[str, Any]:
    when = datetime.fromtimestamp(t_us / 1_000_000, UTC)
    return {
        "hour_of_day": when.hour,
        "day_of_week": when.weekday(),
        "is_weekend": when.weekday() >= 5,
    }


def evaluate_derived(
    feature: DerivedFeature,
    values: Mapping[str, Any],
    times: Mapping[str, int | None],
    t_us: int,
) -> tuple[Any, bool]:
    """(value, ok): ok is False when the expression failed at run time (status error)."""
    try:
        return feature.compiled.evaluate(Scope(values, context(t_us), times, t_us)), True
    except EvalError:
        return None, False
