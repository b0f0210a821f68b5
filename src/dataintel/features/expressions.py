"""A sandboxed expression language for derived features.

Python's own grammar is used only to *parse* (``ast.parse(mode="eval")``); the tree is
checked against a whitelist and compiled into closures. Nothing is ever passed to ``eval`` or
``exec``: there are no attributes, subscripts, comprehensions, lambdas or calls other than
the functions below, so an expression can only read the values it names and compute.

- values: other feature values of the entity (``cart_adds_1h``) and derived features;
- context: ``hour_of_day`` (0-23, UTC), ``day_of_week`` (0 = Monday), ``is_weekend``;
- ``seconds_since(<LAST or FIRST value>)``: seconds from that value's event to t;
- numbers, strings, ``true``/``false``/``null`` (or ``True``/``False``/``None``);
- ``+ - * / // % **``, comparisons, ``and or not``, ``a if cond else b``;
- ``min max abs round coalesce log exp sqrt``.

null propagates: arithmetic or a comparison with null is null; so is a division by zero or a
math domain error (``log(0)``). A type error at run time (``"a" + 1``) raises EvalError; the
serving layer answers ``status: error`` for that value.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 1_000
MAX_NODES = 200
MAX_EXPONENT = 64
CONTEXT = ("hour_of_day", "day_of_week", "is_weekend")
CONSTANTS = {"true": True, "false": False, "null": None}
Env = Mapping[str, Any]
Fn = Callable[["Scope"], Any]


class ExpressionError(ValueError):
    """A bad expression, with the 1-based column where the problem is."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column


class EvalError(ValueError):
    """The expression failed for these values (e.g. a string added to a number)."""


@dataclass(frozen=True)
class Scope:
    values: Env
    context: Env
    times: Mapping[str, int | None]  # FIRST / LAST event time (µs) by value name
    t_us: int


def _null_safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return op(a, b)
        except ZeroDivisionError:
            return None
        except (TypeError, ValueError, OverflowError) as exc:
            raise EvalError(str(exc)) from exc

    return run


def _power(a: Any, b: Any) -> Any:
    if isinstance(b, int | float) and abs(b) > MAX_EXPONENT:
        raise EvalError(f"exponent {b} is larger than {MAX_EXPONENT}")
    return operator.pow(a, b)


BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _null_safe(operator.add),
    ast.Sub: _null_safe(operator.sub),
    ast.Mult: _null_safe(operator.mul),
    ast.Div: _null_safe(operator.truediv),
    ast.FloorDiv: _null_safe(operator.floordiv),
    ast.Mod: _null_safe(operator.mod),
    ast.Pow: _null_safe(_power),
}
COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _null_safe(operator.lt),
    ast.LtE: _null_safe(operator.le),
    ast.Gt: _null_safe(operator.gt),
    ast.GtE: _null_safe(operator.ge),
}


def _math(fn: Callable[[float], float]) -> Callable[..., Any]:
    def run(x: Any) -> Any:
        if x is None:
            return None
        try:
            return fn(float(x))
        except ValueError:
            return None  # domain error: log(0), sqrt(-1)
        except TypeError as exc:
            raise EvalError(str(exc)) from exc

    return run


def _extreme(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        present = [a for a in args if a is not None]
        if not present:
            return None
        try:
            return fn(present)
        except TypeError as exc:
            raise EvalError(str(exc)) from exc

    return run


def _round(x: Any, digits: Any = 0) -> Any:
    if x is None:
        return None
    try:
        return round(float(x), int(digits))
    except (TypeError, ValueError) as exc:
        raise EvalError(str(exc)) from exc


def _abs(x: Any) -> Any:
    if x is None:
        return None
    try:
        return abs(x)
    except TypeError as exc:
        raise EvalError(str(exc)) from exc


FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int]] = {  # fn, min args, max args
    "min": (_extreme(min), 1, 20),
    "max": (_extreme(max), 1, 20),
    "abs": (_abs, 1, 1),
    "round": (_round, 1, 2),
    "coalesce": (lambda *a: next((x for x in a if x is not None), None), 1, 20),
    "log": (_math(math.log), 1, 1),
    "exp": (_math(math.exp), 1, 1),
    "sqrt": (_math(math.sqrt), 1, 1),
}


@dataclass
class CompiledExpression:
    text: str
    names: frozenset[str]  # value names it reads (not context)
    run: Fn = field(repr=False)

    def evaluate(self, scope: Scope) -> Any:
        try:
            return self.run(scope)
        except RecursionError as exc:  # pragma: no cover - bounded by MAX_NODES
            raise EvalError("too deep") from exc


def compile_expression(
    text: str, known: Collection[str], timed: Collection[str] | None = None
) -> CompiledExpression:
    """Parse and check ``text``; ``known``: the value names it may read; ``timed``: those
    ``seconds_since`` accepts (LAST / FIRST values; default: any known name)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if not text.strip():
        raise ExpressionError("empty expression", 1)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", max(exc.offset or 1, 1)) from exc
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"more than {MAX_NODES} terms", 1)
    names: set[str] = set()
    run = _Compiler(set(known), names, set(known if timed is None else timed)).build(tree.body)
    return CompiledExpression(text, frozenset(names), run)


@dataclass
class _Compiler:
    known: set[str]
    names: set[str]
    timed: set[str]

    def build(self, node: ast.expr) -> Fn:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            fn, left, right = BINARY[type(node.op)], self.build(node.left), self.build(node.right)
            return lambda s: fn(left(s), right(s))
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BoolOp):
            return self._boolean(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, yes, no = self.build(node.test), self.build(node.body), self.build(node.orelse)
            return lambda s: yes(s) if test(s) else no(s)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ExpressionError(f"{type(node).__name__} is not allowed", node.col_offset + 1)

    def _constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ExpressionError("only numbers, strings, booleans, null", node.col_offset + 1)
        return lambda _s: value

    def _name(self, node: ast.Name) -> Fn:
        name = node.id
        if name in CONSTANTS:
            constant = CONSTANTS[name]
            return lambda _s: constant
        if name in CONTEXT:
            return lambda s: s.context[name]
        if name not in self.known:
            raise ExpressionError(f"unknown name '{name}'", node.col_offset + 1)
        self.names.add(name)
        return lambda s: s.values.get(name)

    def _unary(self, node: ast.UnaryOp) -> Fn:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda s: None if (v := operand(s)) is None else not v
        if isinstance(node.op, ast.USub):
            neg = _null_safe(lambda a, _b: -a)
            return lambda s: neg(operand(s), 0)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise ExpressionError("operator not allowed", node.col_offset + 1)

    def _boolean(self, node: ast.BoolOp) -> Fn:
        parts = [self.build(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda s: all(bool(p(s)) for p in parts)
        return lambda s: any(bool(p(s)) for p in parts)

    def _compare(self, node: ast.Compare) -> Fn:
        ops = []
        for op in node.ops:
            if type(op) not in COMPARE:
                raise ExpressionError("comparison not allowed", node.col_offset + 1)
            ops.append(COMPARE[type(op)])
        terms = [self.build(node.left), *(self.build(c) for c in node.comparators)]

        def run(s: Scope) -> Any:
            values = [t(s) for t in terms]
            result: Any = True
            for op, a, b in zip(ops, values, values[1:], strict=False):
                out = op(a, b)
                if out is None:
                    return None
                result = result and out
            return result

        return run

    def _call(self, node: ast.Call) -> Fn:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ExpressionError("only calls of the listed functions", node.col_offset + 1)
        name = node.func.id
        if name == "seconds_since":
            return self._seconds_since(node)
        if name not in FUNCTIONS:
            raise ExpressionError(f"unknown function '{name}'", node.col_offset + 1)
        fn, low, high = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            raise ExpressionError(f"{name} takes {low} to {high} arguments", node.col_offset + 1)
        args = [self.build(a) for a in node.args]
        return lambda s: fn(*(a(s) for a in args))

    def _seconds_since(self, node: ast.Call) -> Fn:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise ExpressionError(
                "seconds_since takes the name of a LAST or FIRST value", node.col_offset + 1
            )
        target = node.args[0]
        if target.id not in self.known:
            raise ExpressionError(f"unknown name '{target.id}'", target.col_offset + 1)
        if target.id not in self.timed:
            raise ExpressionError(
                f"'{target.id}' is not a LAST or FIRST value", target.col_offset + 1
            )
        self.names.add(target.id)
        ref = target.id

        def run(s: Scope) -> Any:
            when = s.times.get(ref)
            return None if when is None else (s.t_us - when) / 1_000_000

        return run
