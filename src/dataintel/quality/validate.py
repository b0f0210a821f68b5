"""Validate a sample of events without storing them (POST /v1/quality/validate with events).

Each event is checked as ingest would check it now: against the deployed schema of the
pipeline, by ingest's own compiled validator (ingest/validation.py: envelope, event name,
required fields, types, unknown-property policy, lateness). The events ingest would accept
are then checked against the row-level rules (missing, range, accepted_values, regex,
custom_sql) by the very conditions the rule runner aggregates (quality/rules_sql.row_terms),
run by the analytics engine over the sample lent as a table: a rule's verdict on one event is
the one its run would count."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from dataintel.config.deployments.active import ActiveConfig
from dataintel.errors import InvalidInput
from dataintel.ingest.validation import Limits, PipelineValidator
from dataintel.model.quality import ROW_TYPES, QualityRule
from dataintel.quality import rules_sql as q
from dataintel.quality.rules_run import property_types
from dataintel.quality.schemas import EventVerdict, Problem, RuleVerdict, ValidateReport
from dataintel.storage import records
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.sql_terms import Params

UTC_US = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("project_id", pa.string()),
        ("pipeline_id", pa.string()),
        ("event_id", pa.string()),
        ("event", pa.string()),
        ("ts", UTC_US),
        ("received_at", UTC_US),
        ("user_id", pa.string()),
        ("cart_id", pa.string()),
        ("session_id", pa.string()),
        ("properties", pa.string()),
    ]
)


def _applies(rule: QualityRule, pipeline_id: str) -> bool:
    return rule.enabled and rule.kind in ROW_TYPES and rule.pipeline in (None, pipeline_id)


def validate_sample(
    analytics: AnalyticsStore,
    config: ActiveConfig,
    pipeline_id: str | None,
    events: Sequence[Any],
    limits: Limits,
) -> ValidateReport:
    if pipeline_id is None:
        raise InvalidInput.field(["body", "pipeline"], "required with events", kind="missing")
    spec = config.snapshot.pipeline(pipeline_id)
    if spec is None or config.version is None:
        raise InvalidInput.field(["body", "pipeline"], f"no deployed pipeline {pipeline_id!r}")
    validator = PipelineValidator(config.project_id, config.version, spec, limits)
    now = time.time_ns() // 1000
    verdicts: list[EventVerdict] = []
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(events):
        logged, event_id, _name, reasons = validator.check(item, now)
        problems = [
            Problem(code=r["code"], pointer=r["pointer"], message=r["message"]) for r in reasons
        ]
        verdicts.append(
            EventVerdict(index=i, event_id=event_id, accepted=logged is not None, problems=problems)
        )
        if logged is not None:
            rows.append({"i": i, **_columns(records.decode(logged.value))})
    rules = [r for r in config.snapshot.quality.rules if _applies(r, pipeline_id)]
    verdict_rules = _check_rules(analytics, config, rules, rows, verdicts)
    return ValidateReport(events=verdicts, rules=verdict_rules)


def _columns(event: records.StoredEvent) -> dict[str, Any]:
    def at(us: int) -> datetime:
        return datetime.fromtimestamp(us / 1_000_000, UTC)

    return {
        "project_id": event["project_id"],
        "pipeline_id": event["pipeline_id"],
        "event_id": event["event_id"],
        "event": event["event"],
        "ts": at(event["ts"]),
        "received_at": at(event["received_at"]),
        "user_id": event["user_id"],
        "cart_id": event["cart_id"],
        "session_id": event["session_id"],
        "properties": orjson.dumps(event["properties"]).decode(),
    }


def _check_rules(
    analytics: AnalyticsStore,
    config: ActiveConfig,
    rules: list[QualityRule],
    rows: list[dict[str, Any]],
    verdicts: list[EventVerdict],
) -> list[RuleVerdict]:
    if not rules or not rows:
        return [
            RuleVerdict(
                rule=r.name,
                type=r.kind.value,
                passing=0,
                total=0,
                pass_fraction=None,
                status="pass",
            )
            for r in rules
        ]
    p = Params()
    types = property_types(config.snapshot)
    select = ["i"]
    for k, rule in enumerate(rules):
        passes, counts = q.row_terms(rule, p, types)
        if rule.events_filter is not None:
            counts = f"({counts}) AND event = {p(rule.events_filter)}"
        select += [f"CAST({counts} AS BOOLEAN) AS c{k}", f"CAST({passes} AS BOOLEAN) AS p{k}"]
    sql = f"SELECT {', '.join(select)} FROM sample ORDER BY i"  # noqa: S608 - checked terms
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    out: list[RuleVerdict] = []
    found = [b.to_pylist() for b in analytics.sql_batches(sql, p.values, {"sample": table})]
    result = [row for batch in found for row in batch]
    for k, rule in enumerate(rules):
        counted = [row for row in result if row[f"c{k}"]]
        passing = [row for row in counted if row[f"p{k}"]]
        for row in counted:
            if not row[f"p{k}"]:
                verdicts[row["i"]].problems.append(
                    Problem(
                        code="rule_failed",
                        message=f"fails the {rule.kind.value} rule {rule.name!r}",
                        rule=rule.name,
                    )
                )
        fraction = len(passing) / len(counted) if counted else None
        status = "pass" if fraction is None or fraction >= rule.mostly else "fail"
        out.append(
            RuleVerdict(
                rule=rule.name,
                type=rule.kind.value,
                passing=len(passing),
                total=len(counted),
                pass_fraction=fraction,
                status=status,
            )
        )
    return out
