"""A report as PDF (reportlab): its title, identity and parameters, a chart per chart spec
(reportlab.graphics bar / line charts) and every table with its numbers as text (the first
PDF_MAX_ROWS rows of each; the other formats hold all of them)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson
import pyarrow as pa
from reportlab.graphics.charts.barcharts import VerticalBarChart  # type: ignore[import-untyped]
from reportlab.graphics.charts.legends import Legend  # type: ignore[import-untyped]
from reportlab.graphics.charts.linecharts import (  # type: ignore[import-untyped]
    HorizontalLineChart,
)
from reportlab.graphics.shapes import Drawing  # type: ignore[import-untyped]
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from dataintel.reports.data import ChartSpec, RenderMeta, ReportData

PDF_MAX_ROWS = 500
MAX_CELL = 60
MAX_SERIES = 8
MAX_LABELS = 24
PALETTE = [
    colors.HexColor(c)
    for c in ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
] + [colors.grey]
CHART_W, CHART_H = 230 * mm, 75 * mm


def pdf_bytes(data: ReportData, meta: RenderMeta) -> bytes:
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=meta.title,
        author="dataintel",
        subject=f"report {meta.report_id} ({meta.kind})",
    )
    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph(escape(meta.title), styles["Title"]),
        Paragraph(
            escape(
                f"Report {meta.report_id} · kind {meta.kind} · generated "
                f"{meta.generated_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}"
            ),
            styles["Normal"],
        ),
        Spacer(1, 3 * mm),
    ]
    if meta.params:
        story += [_params_table(meta.params), Spacer(1, 4 * mm)]
    for chart in data.charts:
        story += [
            Paragraph(escape(chart.title or chart.y), styles["Heading2"]),
            _chart(chart, data.tables[chart.table]),
            Spacer(1, 4 * mm),
        ]
    for name, table in data.tables.items():
        story += _table_section(name, table, styles)
    doc.build(story)
    return buf.getvalue()


def text(value: Any) -> str:
    """A cell as the PDF prints it: integers in full, floats to 4 decimals without trailing
    zeros, times in ISO-8601 UTC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def _cell(value: Any) -> str:
    out = text(value)
    return out if len(out) <= MAX_CELL else out[: MAX_CELL - 1] + "…"


GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _params_table(params: Any) -> Table:
    rows = [["parameter", "value"]] + [[k, _cell(v)] for k, v in params.items()]
    return Table(rows, style=GRID, hAlign="LEFT")


def _table_section(name: str, table: pa.Table, styles: Any) -> list[Any]:
    heading = Paragraph(escape(f"{name} ({table.num_rows} rows)"), styles["Heading2"])
    if table.num_rows == 1 and table.num_columns > 3:  # one record: a key / value list
        (row,) = table.to_pylist()
        grid = Table(
            [["field", "value"]] + [[k, _cell(v)] for k, v in row.items()],
            style=GRID,
            hAlign="LEFT",
        )
        return [heading, grid, Spacer(1, 4 * mm)]
    shown = table.slice(0, PDF_MAX_ROWS).to_pylist()
    rows = [list(table.column_names)] + [[_cell(v) for v in r.values()] for r in shown]
    out: list[Any] = [heading, Table(rows, style=GRID, repeatRows=1, hAlign="LEFT")]
    if table.num_rows > PDF_MAX_ROWS:
        note = (
            f"The first {PDF_MAX_ROWS} of {table.num_rows} rows are shown; the CSV, JSON "
            "and Parquet formats of this report hold every row."
        )
        out.append(Paragraph(escape(note), styles["Italic"]))
    out.append(Spacer(1, 4 * mm))
    return out


def chart_series(
    spec: ChartSpec, table: pa.Table
) -> tuple[list[str], list[str], list[list[float]]]:
    """(category labels, series names, one row of values per series): the x values sorted,
    the MAX_SERIES - 1 largest series by total and the rest summed as ``other``."""
    xs = table.column(spec.x).to_pylist()
    ys = [float(v or 0) for v in table.column(spec.y).to_pylist()]
    keys = [text(v) for v in table.column(spec.series).to_pylist()] if spec.series else None
    categories = sorted(set(xs), key=lambda v: (v is None, v))
    at = {v: i for i, v in enumerate(categories)}
    sums: dict[str, list[float]] = {}
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        key = keys[i] if keys is not None else spec.y
        sums.setdefault(key, [0.0] * len(categories))[at[x]] += y
    ranked = sorted(sums, key=lambda k: -sum(sums[k]))
    names = ranked[: MAX_SERIES - 1] if len(ranked) > MAX_SERIES else ranked
    values = [sums[n] for n in names]
    if len(ranked) > len(names):
        rest = [sums[k] for k in ranked[len(names) :]]
        values.append([sum(col) for col in zip(*rest, strict=True)])
        names = [*names, "other"]
    return [text(c) for c in categories], names, values


def _chart(spec: ChartSpec, table: pa.Table) -> Drawing:
    labels, names, values = chart_series(spec, table)
    drawing = Drawing(CHART_W, CHART_H)
    chart = HorizontalLineChart() if spec.kind == "line" else VerticalBarChart()
    chart.x, chart.y = 40, 45
    chart.width, chart.height = CHART_W - 170, CHART_H - 60
    chart.data = [tuple(v) for v in values] if values else [(0.0,)]
    step = max(1, -(-len(labels) // MAX_LABELS))
    chart.categoryAxis.categoryNames = [
        label if i % step == 0 else "" for i, label in enumerate(labels)
    ] or [""]
    chart.categoryAxis.labels.angle = 30
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.categoryAxis.labels.fontSize = 6
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontSize = 6
    for i in range(len(values)):
        color = PALETTE[i % len(PALETTE)]
        if spec.kind == "line":
            chart.lines[i].strokeColor = color
            chart.lines[i].strokeWidth = 1.2
        else:
            chart.bars[i].fillColor = color
    drawing.add(chart)
    drawing.add(_legend(names, CHART_W - 120, CHART_H - 15))
    return drawing


def _legend(names: Sequence[str], x: float, y: float) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.fontSize = 7
    legend.alignment = "right"
    legend.columnMaximum = 10
    legend.colorNamePairs = [(PALETTE[i % len(PALETTE)], name[:30]) for i, name in enumerate(names)]
    return legend
