"""The sandboxed expression language of derived features."""

from __future__ import annotations

from typing import Any

import pytest

from dataintel.model.expressions import EvalError, ExpressionError, Scope, compile_expression

KNOWN = {"a_1h", "b_1h", "last_sku_24h", "s_7d"}
T = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, a Thursday


def run(text: str, values: dict[str, Any] | None = None, **times: int | None) -> Any:
    expr = compile_expression(text, KNOWN, {"last_sku_24h"})
    ctx = {"hour_of_day": 0, "day_of_week": 3, "is_weekend": False}
    return expr.evaluate(Scope(values or {}, ctx, times, T))


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("a_1h + b_1h * 2", {"a_1h": 1, "b_1h": 3}, 7),
        ("(a_1h - b_1h) / a_1h", {"a_1h": 4, "b_1h": 1}, 0.75),
        ("a_1h / b_1h", {"a_1h": 1, "b_1h": 0}, None),  # division by zero -> null
        ("a_1h + 1", {"a_1h": None}, None),  # null propagates
        ("coalesce(a_1h, 0) + 1", {"a_1h": None}, 1),
        ("a_1h > 2 and not is_weekend", {"a_1h": 3}, True),
        ("'high' if s_7d >= 100 else 'low'", {"s_7d": 150.0}, "high"),
        ("max(a_1h, b_1h, 2)", {"a_1h": None, "b_1h": 1}, 2),
        ("round(sqrt(a_1h), 2)", {"a_1h": 2}, 1.41),
        ("log(a_1h)", {"a_1h": 0}, None),  # domain error -> null
        ("hour_of_day + day_of_week", {}, 3),
        ("a_1h ** 2", {"a_1h": 3}, 9),
        ("true and null == null", {}, True),
    ],
)
def test_values(text: str, values: dict[str, Any], expected: Any) -> None:
    assert run(text, values) == expected


def test_seconds_since_a_last_value() -> None:
    assert run("seconds_since(last_sku_24h) / 60", last_sku_24h=T - 90_000_000) == 1.5
    assert run("seconds_since(last_sku_24h)", last_sku_24h=None) is None


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("a_1h + cart_add_1h", "unknown name 'cart_add_1h'", 8),
        ("a_1h + * 2", "syntax error", 8),
        ("a_1h b_1h", "syntax error", 6),
        ("a_1h.__class__", "Attribute is not allowed", 1),
        ("open('x')", "unknown function 'open'", 1),
        ("__import__('os')", "unknown function '__import__'", 1),
        ("[x for x in a_1h]", "ListComp is not allowed", 1),
        ("a_1h[0]", "Subscript is not allowed", 1),
        ("lambda: 1", "Lambda is not allowed", 1),
        ("seconds_since(a_1h)", "'a_1h' is not a LAST or FIRST value", 15),
        ("seconds_since(1)", "seconds_since takes the name", 1),
        ("min()", "min takes 1 to 20 arguments", 1),
        ("x" * 1001, "longer than", 1001),
        ("", "empty expression", 1),
    ],
)
def test_bad_expressions_are_rejected_with_a_position(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, KNOWN, {"last_sku_24h"})
    assert message in info.value.message
    assert info.value.column == column


def test_names_read_are_reported() -> None:
    assert compile_expression("a_1h / coalesce(b_1h, 1)", KNOWN).names == {"a_1h", "b_1h"}


def test_type_errors_at_run_time_raise_eval_error() -> None:
    with pytest.raises(EvalError):
        run("a_1h + 1", {"a_1h": "text"})
    with pytest.raises(EvalError):
        run("a_1h ** 1000", {"a_1h": 2})
