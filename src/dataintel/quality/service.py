"""The quality plane's use cases: run the deployed rules of a project and store the results
(job ``quality.rules``), read the results time series, and the status per pipeline, event
and feature."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.errors import InvalidInput
from dataintel.model.jobs import JobOutcome
from dataintel.quality import alert_repository as alert_repo
from dataintel.quality import alerts
from dataintel.quality import repository as repo
from dataintel.quality import rules_sql as q
from dataintel.quality.rules_run import Outcome, RuleRunner
from dataintel.quality.schemas import ResultPage, ResultRead, RunParams, StatusRead
from dataintel.quality.status import statuses
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.metadata.quality_models import QualityResult


def run_rules(
    analytics: AnalyticsStore,
    sessions: sessionmaker[Session],
    configs: ActiveConfigCache,
    project_id: str,
    slot: datetime,
    run_id: int | None,
    params: RunParams,
) -> JobOutcome:
    """Run every enabled rule of the project's deployed config over the window and store the
    results (a run of the same slot again replaces them); the outcome counts them."""
    config = configs.get(project_id)
    rules = [r for r in config.snapshot.quality.rules if r.enabled]
    end = params.end or slot
    start = end - timedelta(seconds=params.window_seconds)

    def dead_letters(data: q.Dataset) -> int:
        with sessions() as session:
            return repo.dead_letters(
                session, project_id, (data.start, data.end), data.event, data.pipeline
            )

    outcomes = RuleRunner(analytics, project_id, config.snapshot, dead_letters).run(
        rules, start, end
    )
    now = datetime.now(UTC)
    rows = [_row(project_id, o, slot, run_id, (start, end), now) for o in outcomes]
    with sessions.begin() as session:
        repo.replace_slot(session, project_id, slot, rows)
        raise_alerts(session, project_id, outcomes, {r.name for r in rules})
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("pass", "fail", "error")}
    return {
        **counts,
        "deployed_version": config.version,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "failing": sorted(o.rule.name for o in outcomes if o.status == "fail"),
        "errored": sorted(o.rule.name for o in outcomes if o.status == "error"),
    }


RULE_ALERT = "rule:"  # fingerprint prefix of a rule's alert: rule:<name>


def raise_alerts(
    session: Session, project_id: str, outcomes: Sequence[Outcome], deployed: set[str]
) -> None:
    """A failing rule opens (or keeps) its alert, a passing one resolves it; an errored rule
    changes nothing (its check could not say). The alert of a rule no longer deployed (or
    disabled) is resolved: nothing checks its condition any more."""
    for o in outcomes:
        if o.status == "error":
            continue
        rule = o.rule
        detail = {
            "rule_type": rule.kind.value,
            "dataset": rule.dataset,
            "column": getattr(rule, "column", None),
            "observed": o.observed,
            "pass_fraction": o.pass_fraction,
            "passing": o.passing,
            "total": o.total,
        }
        alerts.observe(
            session,
            project_id,
            fingerprint=RULE_ALERT + rule.name,
            failing=o.status == "fail",
            kind="rule",
            severity=rule.severity,
            title=f"quality rule {rule.name} ({rule.kind.value}) fails",
            detail=detail,
            source="quality.rules",
        )
    for gone in alert_repo.live_fingerprints(session, project_id, RULE_ALERT):
        if gone[len(RULE_ALERT) :] not in deployed:
            alerts.observe(session, project_id, fingerprint=gone, failing=False, kind="rule")


def _row(
    project_id: str,
    o: Outcome,
    slot: datetime,
    run_id: int | None,
    window: tuple[datetime, datetime],
    now: datetime,
) -> QualityResult:
    rule = o.rule
    column: Any = getattr(rule, "column", None)
    return QualityResult(
        project_id=project_id,
        rule=rule.name,
        rule_type=rule.kind.value,
        dimension=rule.scored_dimension.value,
        severity=rule.severity,
        dataset=rule.dataset,
        pipeline=rule.pipeline,
        column=column,
        run_id=run_id,
        slot=slot,
        evaluated_at=now,
        window_start=window[0],
        window_end=window[1],
        observed=o.observed,
        passing=o.passing,
        total=o.total,
        pass_fraction=o.pass_fraction,
        weight=rule.weight,
        status=o.status,
        detail=o.detail,
    )


def _read(row: QualityResult) -> ResultRead:
    return ResultRead(
        id=row.id,
        rule=row.rule,
        type=row.rule_type,
        dimension=row.dimension,
        severity=row.severity,
        dataset=row.dataset,
        pipeline=row.pipeline,
        column=row.column,
        run_id=row.run_id,
        slot=row.slot,
        evaluated_at=row.evaluated_at,
        window_start=row.window_start,
        window_end=row.window_end,
        observed=row.observed,
        passing=row.passing,
        total=row.total,
        pass_fraction=row.pass_fraction,
        status=row.status,
        detail=row.detail,
    )


class QualityService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def results(
        self,
        project_id: str,
        rule: str | None,
        status: str | None,
        since: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> ResultPage:
        before = _cursor(cursor)
        rows: Sequence[QualityResult] = repo.results(
            self.session, project_id, rule, status, since, before, limit + 1
        )
        page = [_read(r) for r in rows[:limit]]
        more = len(rows) > limit
        return ResultPage(results=page, next_cursor=str(page[-1].id) if more and page else None)

    def status(self, project_id: str, configs: ActiveConfigCache) -> StatusRead:
        config = configs.get(project_id)
        latest = {r.rule: r for r in repo.latest(self.session, project_id)}
        alerting = {
            f[len(RULE_ALERT) :]
            for f in alert_repo.live_fingerprints(self.session, project_id, RULE_ALERT)
        }
        overall, pipelines, events, features = statuses(config.snapshot, latest, alerting)
        return StatusRead(
            project_id=project_id,
            deployed_version=config.version,
            overall=overall,
            pipelines=pipelines,
            events=events,
            features=features,
        )


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput.field(["query", "cursor"], "not a cursor this API returned")
    return int(cursor)
