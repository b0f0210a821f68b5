"""Drive the real feature engine (analytics sink, then online sink) over a stream of events,
with an injected processor clock; shared by the property, real-data and crash tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dataintel.features.online.engine import FeatureEngine
from dataintel.features.online.plans import FeaturePlan, plan_project
from dataintel.model.tiles import evaluate
from dataintel.storage import records
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.online.port import EntityRef, OnlineStore

PROPERTY_FEATURES = """
project: {id: prop, name: Property}
pipelines:
  - id: web
    name: Web
    events:
      - name: ev
        fields:
          - {name: x, type: number}
          - {name: k, type: string}
          - {name: store, type: string}
features:
  - {name: n, pipeline_id: web, source_event: ev, aggregation: COUNT,
     windows: [30s, 90s, 5m, 1h, 12000s, 24h, 7d, 30d, lifetime]}
  - {name: s, pipeline_id: web, source_event: ev, aggregation: SUM, field: x,
     windows: [30s, 5m, 1h, 24h, 7d, 30d, lifetime]}
  - {name: a, pipeline_id: web, source_event: ev, aggregation: AVG, field: x,
     windows: [90s, 1h, 7d, lifetime]}
  - {name: lo, pipeline_id: web, source_event: ev, aggregation: MIN, field: x,
     windows: [30s, 24h, 30d]}
  - {name: hi, pipeline_id: web, source_event: ev, aggregation: MAX, field: x,
     windows: [5m, 12000s, lifetime]}
  - {name: d, pipeline_id: web, source_event: ev, aggregation: COUNT_DISTINCT, field: k,
     windows: [30s, 1h, 7d, lifetime]}
  - {name: dx, pipeline_id: web, source_event: ev, aggregation: COUNT_DISTINCT, field: x,
     windows: [24h]}
  - {name: f, pipeline_id: web, source_event: ev, aggregation: FIRST, field: k,
     windows: [5m, 7d, lifetime]}
  - {name: l, pipeline_id: web, source_event: ev, aggregation: LAST, field: x,
     windows: [30s, 24h, lifetime]}
  - {name: cn, pipeline_id: web, source_event: ev, entity_key: cart_id, aggregation: COUNT,
     windows: [1h, lifetime]}
  - {name: ls, pipeline_id: web, source_event: ev, entity_key: store, aggregation: LAST,
     field: k, windows: [1h, 30d]}
"""


def stored(
    project_id: str,
    event_id: str,
    ts: int,
    user: str | None,
    props: dict[str, Any],
    cart: str | None = None,
    event: str = "ev",
    pipeline: str = "web",
) -> records.StoredEvent:
    return records.StoredEvent(
        project_id=project_id,
        pipeline_id=pipeline,
        pipeline_version=1,
        event_id=event_id,
        event=event,
        ts=ts,
        received_at=ts,
        user_id=user,
        cart_id=cart,
        session_id=None,
        properties=props,
    )


@dataclass
class Driver:
    """Appends events as log entries of one partition and applies them batch by batch."""

    engine: FeatureEngine
    analytics: AnalyticsStore
    online: OnlineStore
    project_id: str
    offset: int = 0
    log: list[LogEntry] = field(default_factory=list)
    now: int = 0

    def append(self, events: Sequence[records.StoredEvent]) -> list[LogEntry]:
        entries = []
        for e in events:
            entries.append(LogEntry(0, self.offset, records.encode(e)))
            self.offset += 1
        self.log.extend(entries)
        return entries

    def apply(self, entries: Sequence[LogEntry], now: int) -> None:
        self.now = now
        result = self.analytics.apply(entries)
        self.engine.apply(entries, result)

    def plans(self) -> list[FeaturePlan]:
        return plan_project(self.project_id, self.engine.configs.get(self.project_id).snapshot)

    def online_values(self, entity_key: str, ids: Sequence[str], t: int) -> dict[str, Any]:
        plans = [p for p in self.plans() if p.entity_key == entity_key and p.name != "_owner"]
        refs = [EntityRef(self.project_id, entity_key, i) for i in ids]
        blobs = self.online.read(refs, [p.state_field for p in plans])
        out: dict[str, Any] = {}
        for ref, found in zip(refs, blobs, strict=True):
            values: dict[str, Any] = {}
            for plan in plans:
                for name, (value, _) in evaluate(
                    plan.aggregation, found.get(plan.state_field), plan.windows, t
                ).items():
                    values[name] = value
            out[ref.entity_id] = values
        return out
