"""What a funnel asks for (``FunnelSpec``) and the small text syntax of its query parameters.

Syntax (docs/analytics-funnels.md):

- step: ``event`` or ``event[filter,filter,...]``; a filter is ``property OP value`` with OP
  one of ``= != > >= < <=``; a numeric value compares numerically, any other as text;
  ``"..."`` quotes a value holding ``,`` or ``]``.
- exclude: a step-like term, optionally followed by ``@a-b`` (between step a and step b,
  1-based; default: the whole funnel).
- step_window: ``k:duration`` (step k within the duration of step k-1).
- durations: ``<n>s|m|h|d|w`` (``90m``, ``14d``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

MAX_STEPS = 12
MAX_EXCLUSIONS = 8
MAX_FILTERS = 8


class FunnelMode(StrEnum):
    ORDERED = "ordered"
    STRICT = "strict"
    UNORDERED = "unordered"


class FunnelEntity(StrEnum):
    USER = "user_id"
    CART = "cart_id"
    SESSION = "session_id"


class SpecError(ValueError):
    """A parameter that cannot be used; ``field`` names it (``step/2``, ``window``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_PROPERTY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$\-]{0,127}$")
_EVENT = re.compile(r"^[A-Za-z0-9_.:\-$ ]{1,128}$")
_DURATION = re.compile(r"^(\d{1,6})(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    prop: str
    op: str
    value: str | float  # a float compares numerically, a str as text


@dataclass(frozen=True, slots=True)
class EventMatch:
    event: str
    filters: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class Exclusion:
    match: EventMatch
    from_step: int  # 1-based, the exclusion counts strictly after this step ...
    to_step: int  # ... and strictly before this one


@dataclass(frozen=True, slots=True)
class FunnelSpec:
    steps: tuple[EventMatch, ...]
    start: datetime
    end: datetime
    mode: FunnelMode = FunnelMode.ORDERED
    window: timedelta = timedelta(days=14)
    step_windows: dict[int, timedelta] = field(default_factory=dict)  # step k (2..n) -> limit
    exclusions: tuple[Exclusion, ...] = ()
    breakdown: str | None = None
    breakdown_limit: int = 25
    entity: FunnelEntity = FunnelEntity.USER

    def __post_init__(self) -> None:
        check_spec(self)


def check_spec(spec: FunnelSpec) -> None:
    n = len(spec.steps)
    if n < 2:
        raise SpecError("step", "a funnel needs at least two steps")
    if n > MAX_STEPS:
        raise SpecError("step", f"at most {MAX_STEPS} steps")
    if spec.end <= spec.start:
        raise SpecError("to", "must be after from")
    if not timedelta(seconds=1) <= spec.window <= MAX_WINDOW:
        raise SpecError("window", "must be between 1s and 366d")
    for k, limit in spec.step_windows.items():
        if not 2 <= k <= n:
            raise SpecError("step_window", f"step {k} is not a step 2..{n}")
        if not timedelta(seconds=0) <= limit <= MAX_WINDOW:
            raise SpecError("step_window", "must be between 0s and 366d")
    if spec.step_windows and spec.mode is FunnelMode.UNORDERED:
        raise SpecError("step_window", "unordered funnels have no step order to time")
    if len(spec.exclusions) > MAX_EXCLUSIONS:
        raise SpecError("exclude", f"at most {MAX_EXCLUSIONS} exclusions")
    for i, ex in enumerate(spec.exclusions):
        where = f"exclude/{i + 1}"
        if not 1 <= ex.from_step < ex.to_step <= n:
            raise SpecError(where, f"the step range must satisfy 1 <= a < b <= {n}")
        if spec.mode is FunnelMode.UNORDERED and (ex.from_step, ex.to_step) != (1, n):
            raise SpecError(where, "unordered funnels only allow exclusions over all steps")
        for step in spec.steps:
            if step.event == ex.match.event and set(ex.match.filters) <= set(step.filters):
                raise SpecError(where, "an exclusion may not equal or contain a step's event")
    if spec.mode is FunnelMode.UNORDERED and len(set(spec.steps)) != n:
        raise SpecError("step", "unordered funnels need distinct steps")
    if spec.breakdown is not None and not _PROPERTY.match(spec.breakdown):
        raise SpecError("breakdown", "not a property name")
    if not 1 <= spec.breakdown_limit <= 100:
        raise SpecError("breakdown_limit", "must be between 1 and 100")


# ---- text syntax ------------------------------------------------------------------------


def parse_duration(text: str, where: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise SpecError(where, f"{text!r} is not a duration like 30m, 12h, 14d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_match(text: str, where: str) -> EventMatch:
    text = text.strip()
    name, bracket, rest = text.partition("[")
    name = name.strip()
    if not _EVENT.match(name):
        raise SpecError(where, f"{name!r} is not an event name")
    if not bracket:
        return EventMatch(name)
    if not rest.endswith("]"):
        raise SpecError(where, "a filter list must end with ']'")
    terms = _split_filters(rest[:-1], where)
    if not terms or len(terms) > MAX_FILTERS:
        raise SpecError(where, f"between 1 and {MAX_FILTERS} filters inside [...]")
    return EventMatch(name, tuple(parse_filter(term, where) for term in terms))


def parse_filter(term: str, where: str) -> PropertyFilter:
    for op in OPERATORS:
        prop, found, value = term.partition(op)
        if found:
            break
    else:
        raise SpecError(where, f"{term!r} has no operator (= != > >= < <=)")
    prop, value = prop.strip(), value.strip()
    if not _PROPERTY.match(prop):
        raise SpecError(where, f"{prop!r} is not a property name")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return PropertyFilter(prop, op, value[1:-1])
    if op in {">", ">=", "<", "<="} or _is_number(value):
        try:
            number = float(value)
        except ValueError:
            raise SpecError(where, f"{op} needs a number, not {value!r}") from None
        if not math.isfinite(number):
            raise SpecError(where, f"{value!r} is not a finite number")
        return PropertyFilter(prop, op, number)
    return PropertyFilter(prop, op, value)


def parse_exclusion(text: str, n_steps: int, where: str) -> Exclusion:
    body, at, span = text.rpartition("@") if "@" in text.rpartition("]")[2] else (text, "", "")
    if not at:
        return Exclusion(parse_match(text, where), 1, n_steps)
    bounds = span.strip().split("-")
    if len(bounds) != 2 or not all(b.strip().isdigit() for b in bounds):
        raise SpecError(where, f"{span!r} is not a step range like 1-3")
    return Exclusion(parse_match(body, where), int(bounds[0]), int(bounds[1]))


def parse_step_window(text: str, where: str) -> tuple[int, timedelta]:
    step, colon, duration = text.partition(":")
    if not colon or not step.strip().isdigit():
        raise SpecError(where, f"{text!r} is not like 3:2h (step 3 within 2h of step 2)")
    return int(step), parse_duration(duration, where)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _split_filters(text: str, where: str) -> list[str]:
    terms: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise SpecError(where, "unclosed quote")
    terms.append("".join(current).strip())
    if any(not t for t in terms):
        raise SpecError(where, "empty filter")
    return terms
