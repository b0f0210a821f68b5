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

null propagates: arithmetic or an ordering comparison with null is null; so is a division by
zero, a math domain error (``log(0)``, ``sqrt(-1)``, a negative number to a fractional power)
and a result that is not a finite number (``exp(1000)``). ``a and b`` / ``a or b`` behave as in
Python (short-circuit, return an operand; null is falsy), so ``n and x / n`` guards a zero.
A type error at run time (``"a" + 1``) raises EvalError; the serving layer answers
``status: error`` for that value.

Bounded cost: at most MAX_LENGTH characters and MAX_NODES syntax nodes; exponents at most
MAX_EXPONENT; integers wider than 63 bits become floats after every operation (so no
operation ever works on a huge integer); strings longer than MAX_STRING are an EvalError
(checked *before* a repetition ``"x" * n``); ``%`` on a string (printf formatting) is refused.
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
MAX_STRING = 10_000
MAX_INT_BITS = 63
CONTEXT = ("hour_of_day", "day_of_week", "is_weekend")
CONSTANTS = {"true": True, "false": False, "null": None}
Env = Mapping[str, Any]
Fn = Callable[["Scope"], Any]


class ExpressionError(ValueError):
    """A bad expression, with where the problem is: 1-based ``line`` and ``column``
    (characters, in the text as given) and the 0-based character ``offset`` in it."""

    def __init__(self, message: str, column: int, line: int = 1, offset: int | None = None) -> None:
        where = f"column {column}" if line == 1 else f"line {line}, column {column}"
        super().__init__(f"{message} at {where}")
        self.message = message
        self.column = column
        self.line = line
        self.offset = column - 1 if offset is None else offset


class EvalError(ValueError):
    """The expression failed for these values (e.g. a string added to a number)."""


@dataclass(frozen=True)
class Scope:
    values: Env
    context: Env
    times: Mapping[str, int | None]  # FIRST / LAST event time (µs) by value name
    t_us: int


def _bounded(x: Any) -> Any:
    """Keep every intermediate value small: no huge ints, no inf/nan/complex, short strings."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int):
        if x.bit_length() <= MAX_INT_BITS:
            return x
        try:
            x = float(x)
        except OverflowError:
            return None
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, str):
        if len(x) > MAX_STRING:
            raise EvalError(f"a string longer than {MAX_STRING} characters")
        return x
    if isinstance(x, complex):
        return None  # (-8) ** 0.5: a domain error, like sqrt(-1)
    raise EvalError(f"unsupported value {type(x).__name__}")  # pragma: no cover


def _null_safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return _bounded(op(a, b))
        except ZeroDivisionError:
            return None
        except OverflowError:
            return None  # float overflow: not a finite number
        except (TypeError, ValueError) as exc:
            raise EvalError(str(exc)) from exc

    return run


def _power(a: Any, b: Any) -> Any:
    if isinstance(b, int | float) and abs(b) > MAX_EXPONENT:
        raise EvalError(f"exponent {b} is larger than {MAX_EXPONENT}")
    return operator.pow(a, b)  # operands are <= 63-bit ints or floats: cost is bounded


def _times(a: Any, b: Any) -> Any:
    for text, n in ((a, b), (b, a)):
        if isinstance(text, str) and isinstance(n, int) and len(text) * n > MAX_STRING:
            raise EvalError(f"a string longer than {MAX_STRING} characters")
    return operator.mul(a, b)


def _modulo(a: Any, b: Any) -> Any:
    if isinstance(a, str):
        raise EvalError("'%' is not defined for strings")
    return operator.mod(a, b)


BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _null_safe(operator.add),
    ast.Sub: _null_safe(operator.sub),
    ast.Mult: _null_safe(_times),
    ast.Div: _null_safe(operator.truediv),
    ast.FloorDiv: _null_safe(operator.floordiv),
    ast.Mod: _null_safe(_modulo),
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
        if not isinstance(x, int | float):
            raise EvalError(f"a number is needed, not {type(x).__name__}")
        try:
            return _bounded(fn(float(x)))
        except (ValueError, OverflowError):
            return None  # domain error: log(0), sqrt(-1); exp(1000)

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
    if not isinstance(x, int | float) or not isinstance(digits, int):
        raise EvalError("round takes a number and a whole number of digits")
    return _bounded(round(float(x), max(-30, min(30, digits))))


def _abs(x: Any) -> Any:
    if x is None:
        return None
    try:
        return _bounded(abs(x))
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
        """The value (None, bool, int, float or str); EvalError when it cannot be computed.
        Nothing else escapes: a backstop turns any arithmetic surprise into EvalError."""
        try:
            return _bounded(self.run(scope))
        except EvalError:
            raise
        except (ArithmeticError, TypeError, ValueError, RecursionError, MemoryError) as exc:
            raise EvalError(f"{type(exc).__name__}: {exc}") from exc


class _Source:
    """Maps parser positions (line, UTF-8 byte column) back to the text as the user wrote it."""

    def __init__(self, text: str) -> None:
        body = text.lstrip()
        prefix = text[: len(text) - len(body)]
        self.body = body.rstrip()
        self.line_shift = prefix.count("\n")
        self.col_shift = len(prefix) - (prefix.rfind("\n") + 1)
        self.lines = self.body.split("\n")
        self.starts = [0]
        for line in text.split("\n")[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def error(self, message: str, lineno: int, char_col: int) -> ExpressionError:
        """``lineno`` 1-based in the parsed body, ``char_col`` 0-based characters."""
        line = lineno + self.line_shift
        column = char_col + (self.col_shift if lineno == 1 else 0) + 1
        offset = self.starts[min(line, len(self.starts)) - 1] + column - 1
        return ExpressionError(message, column, line, offset)

    def at(self, message: str, node: ast.expr) -> ExpressionError:
        line = self.lines[node.lineno - 1] if 0 < node.lineno <= len(self.lines) else ""
        chars = len(line.encode()[: node.col_offset].decode(errors="ignore"))
        return self.error(message, node.lineno, chars)


def compile_expression(
    text: str, known: Collection[str], timed: Collection[str] | None = None
) -> CompiledExpression:
    """Parse and check ``text``; ``known``: the value names it may read; ``timed``: those
    ``seconds_since`` accepts (LAST / FIRST values; default: any known name)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    if not text.strip():
        raise ExpressionError("empty expression", 1)
    source = _Source(text)
    try:
        tree = ast.parse(source.body, mode="eval")
    except SyntaxError as exc:  # offset: 1-based characters
        lineno, col = exc.lineno or 1, max((exc.offset or 1) - 1, 0)
        raise source.error(f"syntax error: {exc.msg}", lineno, col) from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"syntax error: {exc}", 1) from exc
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"more than {MAX_NODES} terms", 1)
    names: set[str] = set()
    compiler = _Compiler(set(known), names, set(known if timed is None else timed), source)
    run = compiler.build(tree.body)
    return CompiledExpression(text, frozenset(names), run)


@dataclass
class _Compiler:
    known: set[str]
    names: set[str]
    timed: set[str]
    source: _Source

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
        raise self.source.at(f"{type(node).__name__} is not allowed", node)

    def _constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if value is not None and not isinstance(value, bool | int | float | str):
            raise self.source.at("only numbers, strings, booleans, null", node)
        try:
            value = _bounded(value)
        except EvalError as exc:
            raise self.source.at(str(exc), node) from exc
        return lambda _s: value

    def _name(self, node: ast.Name) -> Fn:
        name = node.id
        if name in CONSTANTS:
            constant = CONSTANTS[name]
            return lambda _s: constant
        if name in CONTEXT:
            return lambda s: s.context[name]
        if name not in self.known:
            raise self.source.at(f"unknown name '{name}'", node)
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
        raise self.source.at("operator not allowed", node)

    def _boolean(self, node: ast.BoolOp) -> Fn:
        parts = [self.build(v) for v in node.values]
        stop_when = not isinstance(node.op, ast.And)  # and: stop at falsy; or: at truthy

        def run(s: Scope) -> Any:
            value: Any = None
            for part in parts:
                value = part(s)
                if bool(value) is stop_when:
                    return value
            return value

        return run

    def _compare(self, node: ast.Compare) -> Fn:
        ops = []
        for op in node.ops:
            if type(op) not in COMPARE:
                raise self.source.at("comparison not allowed", node)
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
            raise self.source.at("only calls of the listed functions", node)
        name = node.func.id
        if name == "seconds_since":
            return self._seconds_since(node)
        if name not in FUNCTIONS:
            raise self.source.at(f"unknown function '{name}'", node)
        fn, low, high = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            raise self.source.at(f"{name} takes {low} to {high} arguments", node)
        args = [self.build(a) for a in node.args]
        return lambda s: fn(*(a(s) for a in args))

    def _seconds_since(self, node: ast.Call) -> Fn:
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            raise self.source.at("seconds_since takes the name of a LAST or FIRST value", node)
        target = node.args[0]
        if target.id not in self.known:
            raise self.source.at(f"unknown name '{target.id}'", target)
        if target.id not in self.timed:
            raise self.source.at(f"'{target.id}' is not a LAST or FIRST value", target)
        self.names.add(target.id)
        ref = target.id

        def run(s: Scope) -> Any:
            when = s.times.get(ref)
            return None if when is None else (s.t_us - when) / 1_000_000

        return run
