"""A derived feature must compile against the values its entity has, without cycles.

Pure functions over snapshot specs, used by the derived-features API, at deploy, and by
`dataintel apply`, so all refuse the same things with the same messages (422 naming
``/body/expression`` and the column of the problem)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dataintel.errors import InvalidInput
from dataintel.model.aggregations import Aggregation
from dataintel.model.expressions import CompiledExpression, ExpressionError, compile_expression
from dataintel.model.snapshot import DerivedSpec, FeatureSpec
from dataintel.model.windows import parse_window


def value_names(features: Sequence[FeatureSpec], entity_key: str) -> tuple[set[str], set[str]]:
    """(every value name, the LAST/FIRST ones) of the enabled features of ``entity_key``."""
    known: set[str] = set()
    timed: set[str] = set()
    for f in features:
        if not f.enabled or f.entity_key != entity_key:
            continue
        for w in f.windows:
            name = f"{f.name}_{parse_window(w).name}"
            known.add(name)
            if f.aggregation in (Aggregation.LAST, Aggregation.FIRST):
                timed.add(name)
    return known, timed


Loc = Callable[[DerivedSpec], Sequence[str | int]]


def compile_all(
    features: Sequence[FeatureSpec],
    derived: Sequence[DerivedSpec],
    loc: Loc = lambda _d: ("body",),
) -> list[tuple[DerivedSpec, CompiledExpression]]:
    """Compile every enabled derived feature; return them in evaluation (dependency) order.
    ``loc(spec)``: where the spec sits in the request, for the 422's field."""
    enabled = [d for d in derived if d.enabled]
    compiled: dict[str, tuple[DerivedSpec, CompiledExpression]] = {}
    feature_names = {f.name for f in features}
    for d in enabled:
        known, timed = value_names(features, d.entity_key)
        if d.name in known or d.name in feature_names:
            raise InvalidInput.field(
                [*loc(d), "name"], f"'{d.name}' is already a feature or value name"
            )
        peers = {o.name for o in enabled if o.entity_key == d.entity_key and o.name != d.name}
        try:
            compiled[d.name] = (d, compile_expression(d.expression, known | peers, timed))
        except ExpressionError as exc:
            raise InvalidInput.field([*loc(d), "expression"], str(exc)) from exc
    return _ordered(compiled, loc)


def _ordered(
    compiled: dict[str, tuple[DerivedSpec, CompiledExpression]], loc: Loc
) -> list[tuple[DerivedSpec, CompiledExpression]]:
    order: list[tuple[DerivedSpec, CompiledExpression]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise InvalidInput.field(
                [*loc(compiled[name][0]), "expression"], f"derived features form a cycle: {cycle}"
            )
        state[name] = 1
        for ref in sorted(compiled[name][1].names):
            if ref in compiled:
                visit(ref, [*path, name])
        state[name] = 2
        order.append(compiled[name])

    for name in sorted(compiled):
        visit(name, [])
    return order
