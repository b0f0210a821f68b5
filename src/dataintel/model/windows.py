"""Time windows of a feature and their granularity g(W) (DESIGN.md §3).

g(W) is the largest of 1 s, 1 min, 1 h, 1 d that is at most W/200 (1 s below 200 s), so a
window never covers more than W + 0.5 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LIFETIME = "lifetime"
DEFAULT_WINDOWS = ("5m", "1h", "24h", "7d", "30d")
MIN_SECONDS = 30
MAX_SECONDS = 365 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^([1-9][0-9]{0,7})([smhd])$")
_GRANULARITIES = (86400, 3600, 60, 1)


@dataclass(frozen=True, slots=True)
class Window:
    name: str  # canonical text, e.g. "5m" or "lifetime"
    seconds: int | None  # None for lifetime
    granularity_seconds: int | None


def granularity(seconds: int) -> int:
    for g in _GRANULARITIES:
        if g * 200 <= seconds:
            return g
    return 1


def parse_window(text: str) -> Window:
    """Parse '30s'…'365d' or 'lifetime'; raise ValueError with the reason otherwise."""
    if text == LIFETIME:
        return Window(LIFETIME, None, None)
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"window {text!r} must look like 30s, 5m, 1h, 7d or be 'lifetime'")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"window {text!r} must be between 30s and 365d")
    return Window(text, seconds, granularity(seconds))


def format_seconds(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
