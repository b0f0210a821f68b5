"""The expression engine stays cheap and never lets an exception or an unencodable value out."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
import pytest

from dataintel.model.expressions import (
    MAX_STRING,
    EvalError,
    ExpressionError,
    Scope,
    compile_expression,
)

KNOWN = {"a_1h", "s_7d"}
CTX = {"hour_of_day": 0, "day_of_week": 3, "is_weekend": False}


def run(text: str, **values: Any) -> Any:
    return compile_expression(text, KNOWN).evaluate(Scope(values, CTX, {}, 0))


@pytest.mark.parametrize(
    "text",
    [
        "(((9**64)**64)**64)**64",  # 53M-bit integer, 24 s of CPU without the bound
        "((((9**64)**64)**64)**64)**64",
        "2**63 * 2**63 * 2**63",
        "1e308 * 10",
        "exp(1000)",
        "exp(a_1h)",
        "(0 - 8) ** 0.5",  # complex in Python
        "9**64 / 1e-300",
    ],
)
def test_huge_or_non_finite_numbers_become_null_quickly(text: str) -> None:
    start = time.perf_counter()
    value = run(text, a_1h=10_000)
    assert time.perf_counter() - start < 0.05
    if isinstance(value, int):
        assert value.bit_length() <= 63
    assert value is None or math.isfinite(value)
    orjson.dumps(value)


def test_integers_wider_than_63_bits_become_floats() -> None:
    assert run("2**62 + 2**62") == float(2**63)
    assert run("2**62 - 1 + 2**62") == 2**63 - 1
    assert isinstance(run("2**10"), int)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'x' * 100000000", "longer than"),
        ("s_7d * 1000000000", "longer than"),
        ("'%100000000d' % 1", "'%' is not defined for strings"),
        ("'%s' % s_7d", "'%' is not defined for strings"),
        ("log(s_7d)", "a number is needed"),
        ("round(a_1h, 'x')", "round takes"),
        ("a_1h ** 1000", "exponent"),
    ],
)
def test_costly_or_ill_typed_string_operations_are_eval_errors(text: str, message: str) -> None:
    with pytest.raises(EvalError, match=message):
        run(text, a_1h=2, s_7d="abc")


def test_short_string_repetition_is_fine() -> None:
    assert run("'ab' * 3") == "ababab"
    assert len(run(f"'x' * {MAX_STRING}")) == MAX_STRING


def test_and_or_return_an_operand_like_python() -> None:
    guard = "a_1h and (a_1h - s_7d) / a_1h"
    assert run(guard, a_1h=4, s_7d=1) == 0.75
    assert run(guard, a_1h=0, s_7d=1) == 0
    assert run(guard, a_1h=None, s_7d=1) is None
    assert run("a_1h or 5", a_1h=None) == 5
    assert run("a_1h or 5", a_1h=3) == 3
    assert run("a_1h > 1 and s_7d > 1", a_1h=2, s_7d=3) is True


@pytest.mark.parametrize(
    ("text", "line", "column", "token"),
    [
        ("  a_1h + nope", 1, 10, "nope"),
        ("'é' + nope", 1, 7, "nope"),
        ("(a_1h +\n  nope)", 2, 3, "nope"),
        ("\n  (a_1h +\n nope)", 3, 2, "nope"),
        ("(a_1h +\n * 2)", 2, 2, "* 2"),
        ("'éé' + * 2", 1, 8, "* 2"),
    ],
)
def test_positions_refer_to_the_text_as_written(
    text: str, line: int, column: int, token: str
) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, KNOWN)
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert text[err.offset :].startswith(token)
    where = f"column {column}" if line == 1 else f"line {line}, column {column}"
    assert str(err).endswith(f"at {where}")


def test_parser_failures_are_expression_errors() -> None:
    for text in ["a_1h\x00", "(" * 250 + "1" + ")" * 250, "-" * 999 + "1"]:
        with pytest.raises(ExpressionError):
            compile_expression(text, KNOWN)
