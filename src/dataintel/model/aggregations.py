"""The aggregations a feature can compute (DESIGN.md §3)."""

from __future__ import annotations

from enum import StrEnum


class Aggregation(StrEnum):
    COUNT = "COUNT"
    SUM = "SUM"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"
    COUNT_DISTINCT = "COUNT_DISTINCT"
    LAST = "LAST"
    FIRST = "FIRST"
