"""What a report kind produces (named Arrow tables, chart specs, a title) and what it is
given to produce it. Formats (``reports.formats``) turn a ``ReportData`` into a file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.blob.port import BlobStore


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A chart of one table: ``y`` against ``x``, one bar group / line per value of
    ``series`` (or a single one)."""

    kind: Literal["bar", "line"]
    table: str
    x: str
    y: str
    series: str | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class ReportData:
    title: str
    tables: Mapping[str, pa.Table]
    charts: tuple[ChartSpec, ...] = ()
    # What the report handed out beyond its own file (e.g. rows written to the S3 bucket):
    # recorded in the project's audit trail when the report is done. JSON values, no PII.
    audit: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.tables:
            raise ValueError("a report holds at least one table")
        for chart in self.charts:
            table = self.tables.get(chart.table)
            if table is None:
                raise ValueError(f"chart {chart.title!r}: no table {chart.table!r}")
            for column in (chart.x, chart.y, chart.series):
                if column is not None and column not in table.column_names:
                    raise ValueError(f"chart {chart.title!r}: no column {column!r}")


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What a kind may read: the project's events (the analytics store) and its deployed
    config; ``now`` is the instant the run started (a default range ends there). ``blobs``
    is the service's S3 bucket (``datalake_url``), where a kind may write files of its own;
    None when none is configured."""

    project_id: str
    analytics: AnalyticsStore
    configs: ActiveConfigCache
    now: datetime
    report_id: str = ""
    blobs: BlobStore | None = None


@dataclass(frozen=True, slots=True)
class RenderMeta:
    """The report's identity, written into the file beside its data."""

    report_id: str
    kind: str
    title: str
    params: Mapping[str, object]
    generated_at: datetime
    extra: Mapping[str, object] = field(default_factory=dict)
