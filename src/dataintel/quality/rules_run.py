"""Run a project's quality rules against the analytics store: one scan per dataset, plus the
volume, schema and referential queries, then each rule's status (docs/quality.md).

Row-level rules: ``pass_fraction = passing / total``; the rule passes when it is at least
``mostly``; ``observed`` is the failing share in percent (missing %, duplicate %, the
schema-violation rate, ...). A window without rows passes with no fraction (no evidence,
excluded from the score). Freshness is aggregate: ``observed`` is the age in seconds of the
newest event at the window's end, and it scores 0 or 1. A query that fails makes its rules
``error`` (a failing shared scan is retried rule by rule, so one bad rule cannot hide the
others)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dataintel.model.anomaly import Point, judge
from dataintel.model.drift import jensen_shannon, psi
from dataintel.model.fields import FieldType
from dataintel.model.monitoring import AnomalySettings
from dataintel.model.quality import (
    MAX_INTERVALS,
    DriftRule,
    FreshnessRule,
    QualityRule,
    ReferentialRule,
    SchemaRule,
    VolumeRule,
)
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.quality import rules_sql as q
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.errors import InvalidQuery

Status = Literal["pass", "fail", "error"]
DeadLetters = Callable[[q.Dataset], int]  # dead letters of a dataset arrived in its window
MAX_LISTED = 20  # out-of-bounds volume intervals listed in a result's detail


@dataclass(frozen=True, slots=True)
class Outcome:
    rule: QualityRule
    status: Status
    observed: float | None = None
    passing: int | None = None
    total: int | None = None
    pass_fraction: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def property_types(snapshot: ConfigSnapshot) -> dict[str, FieldType]:
    """Declared property types over every deployed event (the first declaration wins)."""
    types: dict[str, FieldType] = {}
    for pipeline in snapshot.pipelines:
        for event in pipeline.events:
            for f in event.fields:
                types.setdefault(f.name, f.type)
    return types


def row_level(rule: QualityRule, passing: int, total: int, **detail: Any) -> Outcome:
    if total == 0:
        return Outcome(rule, "pass", None, 0, 0, None, {"note": "no rows in the window", **detail})
    fraction = passing / total
    status: Status = "pass" if fraction >= rule.mostly else "fail"
    failing = 100.0 * (total - passing) / total
    return Outcome(rule, status, failing, passing, total, fraction, detail)


def error(rule: QualityRule, exc: Exception) -> Outcome:
    return Outcome(rule, "error", detail={"error": str(exc)[:500]})


class RuleRunner:
    """Evaluates rules of one project over ``[start, end)`` of event time."""

    def __init__(
        self,
        store: AnalyticsStore,
        project_id: str,
        snapshot: ConfigSnapshot,
        dead_letters: DeadLetters,
    ) -> None:
        self.store = store
        self.project_id = project_id
        self.types = property_types(snapshot)
        self.dead_letters = dead_letters

    def run(self, rules: Sequence[QualityRule], start: datetime, end: datetime) -> list[Outcome]:
        groups: dict[tuple[str | None, str | None], list[QualityRule]] = {}
        for rule in rules:
            groups.setdefault((rule.events_filter, rule.pipeline), []).append(rule)
        found: dict[str, Outcome] = {}
        for (event, pipeline), members in groups.items():
            data = q.Dataset(self.project_id, event, pipeline, start, end)
            scanned = [r for r in members if isinstance(r, (*q.SCANNED, FreshnessRule))]
            for outcome in self._scan(data, scanned):
                found[outcome.rule.name] = outcome
            for rule in members:
                if rule.name not in found:
                    found[rule.name] = self._single(data, rule)
        return [found[r.name] for r in rules]

    def _scan(self, data: q.Dataset, rules: Sequence[QualityRule]) -> list[Outcome]:
        if not rules:
            return []
        try:
            compiled = q.scan(data, rules, self.types)
            row = self.store.sql(compiled.sql, compiled.params).to_pylist()[0]
        except (InvalidQuery, ValueError) as exc:
            if len(rules) == 1:
                return [error(rules[0], exc)]
            return [o for r in rules for o in self._scan(data, [r])]
        return [
            self._read(rule, [row[c] for c in compiled.columns[rule.name]], data.end)
            for rule in rules
        ]

    def _read(self, rule: QualityRule, values: list[Any], end: datetime) -> Outcome:
        if isinstance(rule, FreshnessRule):
            newest, rows = values
            if not rows or newest is None:
                return Outcome(
                    rule, "fail", None, None, None, 0.0, {"note": "no event in the window"}
                )
            age = (end - newest).total_seconds()
            ok = age <= rule.max_age_seconds
            detail = {"newest": newest.isoformat()}
            return Outcome(rule, "pass" if ok else "fail", age, None, None, float(ok), detail)
        return row_level(rule, int(values[0] or 0), int(values[1] or 0))

    def _single(self, data: q.Dataset, rule: QualityRule) -> Outcome:
        try:
            if isinstance(rule, VolumeRule):
                return self._volume(data, rule)
            if isinstance(rule, DriftRule):
                return self._drift(data, rule)
            if isinstance(rule, SchemaRule):
                compiled = q.arrivals(data)
                accepted = int(self.store.sql(compiled.sql, compiled.params).to_pylist()[0]["n"])
                dead = self.dead_letters(data)
                return row_level(rule, accepted, accepted + dead, accepted=accepted, rejected=dead)
            assert isinstance(rule, ReferentialRule)
            compiled = q.referential(data, rule)
            row = self.store.sql(compiled.sql, compiled.params).to_pylist()[0]
            return row_level(rule, int(row["passing"] or 0), int(row["total"] or 0))
        except (InvalidQuery, ValueError) as exc:
            return error(rule, exc)

    def _drift(self, data: q.Dataset, rule: DriftRule) -> Outcome:
        """Two queries: the reference's quantile edges, then both windows' counts per bin."""
        split = data.start
        reference = q.Dataset(
            data.project_id,
            data.event,
            data.pipeline,
            split - timedelta(days=rule.reference_days),
            split,
        )
        edges = self._quantile_edges(reference, rule)
        span = q.Dataset(data.project_id, data.event, data.pipeline, reference.start, data.end)
        compiled = q.drift_counts(span, rule, edges, split)
        counts = [[0] * (len(edges) + 1), [0] * (len(edges) + 1)]
        for r in self.store.sql(compiled.sql, compiled.params).to_pylist():
            counts[int(r["cur"])][int(r["b"])] = int(r["n"])
        ref_total, cur_total = sum(counts[0]), sum(counts[1])
        if not cur_total:
            raise ValueError("no value of the column in the window")
        ref_shares = [c / ref_total for c in counts[0]]
        cur_shares = [c / cur_total for c in counts[1]]
        found = {"psi": psi(ref_shares, cur_shares), "js": jensen_shannon(ref_shares, cur_shares)}
        observed = found[rule.metric]
        ok = observed < rule.threshold
        detail = {
            **{k: round(v, 6) for k, v in found.items()},
            "edges": edges,
            "reference_values": ref_total,
            "values": cur_total,
        }
        return Outcome(rule, "pass" if ok else "fail", observed, None, None, float(ok), detail)

    def _quantile_edges(self, reference: q.Dataset, rule: DriftRule) -> list[float]:
        """The reference's k/bins quantiles (linear interpolation between the two values
        around (n - 1)·k/bins, as numpy's default), repeated edges merged."""
        compiled = q.drift_size(reference, rule)
        n = int(self.store.sql(compiled.sql, compiled.params).to_pylist()[0]["n"] or 0)
        if not n:
            raise ValueError("no value of the column in the reference window")
        positions = [(n - 1) * k / rule.bins for k in range(1, rule.bins)]
        ranks = sorted({r for x in positions for r in (math.floor(x), min(math.ceil(x), n - 1))})
        compiled = q.drift_ranks(reference, rule, ranks)
        at = {
            int(r["i"]): float(r["x"])
            for r in self.store.sql(compiled.sql, compiled.params).to_pylist()
        }
        edges: list[float] = []
        for x in positions:
            low, high = math.floor(x), min(math.ceil(x), n - 1)
            edge = at[low] + (at[high] - at[low]) * (x - low)
            if not edges or edge > edges[-1]:
                edges.append(edge)
        return edges

    def _volume(self, data: q.Dataset, rule: VolumeRule) -> Outcome:
        step = timedelta(seconds=rule.interval_seconds)
        first = q.EPOCH + -(-(data.start - q.EPOCH) // step) * step  # ceil to the interval
        last = q.EPOCH + ((data.end - q.EPOCH) // step) * step
        count = max(0, (last - first) // step)
        if count == 0:
            raise ValueError("the window holds no complete interval of interval_seconds")
        if count > MAX_INTERVALS:
            raise ValueError(f"the window holds more than {MAX_INTERVALS} intervals")
        weeks = rule.baseline_weeks if rule.baseline == "seasonal" else 0
        week = timedelta(days=7) // step  # intervals per week (it divides a week: checked)
        origin = first - weeks * week * step
        aligned = q.Dataset(data.project_id, data.event, data.pipeline, origin, last)
        compiled = q.volume(aligned, step // timedelta(microseconds=1))
        per = {
            int(r["b"]): int(r["n"])
            for r in self.store.sql(compiled.sql, compiled.params).to_pylist()
        }
        shift = weeks * week  # index of the window's first interval in the query's series
        counts = [per.get(shift + i, 0) for i in range(count)]
        low = rule.min if rule.min is not None else 0
        high = rule.max if rule.max is not None else float("inf")
        bad = [i for i, n in enumerate(counts) if not low <= n <= high]
        scores: dict[int, float | None] = {}
        if weeks:
            settings = AnomalySettings(
                threshold=rule.z_threshold,
                warmup=weeks,
                min_volume=0,
                min_band_ratio=rule.min_band_ratio,
            )
            for i, n in enumerate(counts):
                past = [per.get(shift + i - k * week, 0) for k in range(1, weeks + 1)]
                verdict = judge(n, [Point(v, v) for v in past], settings, 1.0)
                scores[i] = verdict.score
                if verdict.status == "anomaly" and i not in bad:
                    bad.append(i)
            bad.sort()
        listed = [
            {"start": (first + i * step).isoformat(), "count": counts[i]}
            | ({"z": round(z, 3)} if (z := scores.get(i)) is not None else {})
            for i in bad
        ]
        detail = {
            "intervals": count,
            "min_count": min(counts),
            "max_count": max(counts),
            "out_of_bounds": listed[:MAX_LISTED],
        }
        return row_level(rule, count - len(bad), count, **detail)
