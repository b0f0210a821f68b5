"""The SQL of the offline path: written once in DuckDB SQL, run by the analytics store
(``AnalyticsStore.sql`` / ``sql_batches``, transpiled for ClickHouse). No event leaves it.

One query computes every requested value for many (entity, t) pairs: the entities of one
t (``entities_query``) or the rows of a lent label table (``labels_query``: a range join on
(entity, ``ts ≤ t``)). Window starts are computed by the caller in exact integers and
compared as TIMESTAMPs (µs), so no epoch arithmetic happens in SQL.

Bands. For every t the window starts are ordered by span (a longer window never starts
later, whatever the granularities), so each (event, t) pair falls in one *band*: the index
of the shortest window containing it (the number of windows for lifetime-only). Window j
holds exactly the pairs of bands ≤ j. The query aggregates each (group, source, band) once,
in a few partials per field, and then combines the bands ≤ j of each value (cheap: a few
rows per group), so the work per pair does not grow with the number of windows:

    ev     the project's events of the sources: entity, source number, field reads (on
           DuckDB from one parse of the properties), and for COUNT_DISTINCT fields the time
           of the next event with the same key (``nx``);
    pairs  (group, event) pairs with t (``g_end``) and the band;
    part   per (group, source, band): count; count / sum / min / max of numbers; distinct
           keys (exact: a key counts at its last event ≤ t, the one whose ``nx`` is after
           t); FIRST / LAST candidates by (ts, event_id) with their times, and the count of
           events having the field;
    agg    per group and value: ``n<i>_<j>`` (COUNT: events; others: events having the
           field), ``v<i>_<j>`` (SUM: sum; MIN / MAX: extreme; FIRST / LAST: the value) and
           ``t<i>_<j>`` (FIRST / LAST: the event time). Bands are disjoint in time, so the
           FIRST / LAST of bands ≤ j is the earliest / latest of their candidates.

Empty-window rules are applied by the caller from ``n`` alone (ClickHouse answers 0, '' or
1970 where DuckDB answers NULL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dataintel.features.offline.sql import NUMERIC, Fields, Selected, lit
from dataintel.features.online.plans import is_envelope
from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import WindowSpec
from dataintel.storage.analytics.queries import from_micros
from dataintel.storage.analytics.sql_terms import Params

FAR = datetime(2299, 12, 31)  # "no next event" (ClickHouse's DateTime64 ends in 2299)
_EXTREMES = {Aggregation.MIN: ("lo", "min"), Aggregation.MAX: ("hi", "max")}


class OfflinePlan:
    """What one query computes: the features, their sources, bands and field reads."""

    def __init__(
        self, selected: Sequence[Selected], sources: Sequence[tuple[str, str]], dialect: str
    ) -> None:
        self.selected, self.sources, self.fx = selected, sources, Fields(dialect)
        windows = [w for s in selected for w in s.windows]
        bounded = {(w.span_us, w.granularity_us) for w in windows if w.span_us is not None}
        self.spans: list[tuple[int, int]] = sorted(bounded)  # type: ignore[arg-type]
        self.bounded = all(w.span_us is not None for w in windows)
        self.fields: list[str] = []
        self.reads: dict[str, str] = {}  # ev0 columns: field reads
        self.over: dict[str, str] = {}  # ev columns: window functions over ev0
        self.partials: dict[str, str] = {"c": "count(*)"}
        for sel in selected:
            if sel.aggregation is not Aggregation.COUNT and sel.spec.field is not None:
                self._need(sel)
        if not self.fx.clickhouse:
            self._parse_once()

    def _parse_once(self) -> None:
        """DuckDB: read every property field from ONE parse of the properties document
        (``json_extract`` with a list of paths), not one parse per read."""
        props = [f for f in self.fields if not is_envelope(f)]
        if not props:
            return
        paths = ", ".join(lit("$." + f) for f in props)
        reads: dict[str, str] = {"e_props": f"json_extract(properties, [{paths}])"}
        for name, sql in self.reads.items():
            kind, f = name[0], int(name[1:])
            field = self.fields[f]
            if field in props and kind in "kj":
                value = f"e_props[{props.index(field) + 1}]"
                sql = (
                    f"nullif(json_extract_string({value}, '$'), '')"
                    if kind == "k"
                    else f"CAST({value} AS VARCHAR)"
                )
            reads[name] = sql
        self.reads = reads

    def band(self, w: WindowSpec) -> int:
        if w.span_us is None:
            return len(self.spans)
        return self.spans.index((w.span_us, w.granularity_us))  # type: ignore[arg-type]

    def starts(self, t_us: int) -> list[int]:
        """The window starts at ``t_us``, in band order: floor((t - W)/g)·g."""
        return [((t_us - span) // g) * g for span, g in self.spans]

    def field(self, name: str) -> int:
        return self.fields.index(name)

    def _need(self, sel: Selected) -> None:
        field, agg, fx = sel.spec.field, sel.aggregation, self.fx
        assert field is not None
        if field not in self.fields:
            self.fields.append(field)
        f = self.field(field)
        self.reads[f"k{f}"] = fx.text(field)
        has = f"k{f} IS NOT NULL"
        if agg in NUMERIC:
            self.reads[f"x{f}"] = f"TRY_CAST(k{f} AS DOUBLE)"  # = fx.number(field), parsed once
            if sel.timestamp:  # µs as DOUBLE: exact up to the year 2255
                self.reads[f"x{f}"] = f"CAST({fx.instant(field)} AS DOUBLE)"
            self.partials[f"n{f}"] = f"count(x{f})"
            if agg in _EXTREMES:
                name, fn = _EXTREMES[agg]
                self.partials[f"{name}{f}"] = f"{fn}(x{f})"
            else:
                self.partials[f"s{f}"] = f"sum(x{f})"
        elif agg is Aggregation.COUNT_DISTINCT:
            # Among events of one key at the same instant exactly one gets a later next
            # time (or FAR), whatever their order: ts alone orders enough.
            self.over[f"nx{f}"] = (
                f"lead(ts, 1, $FAR) OVER (PARTITION BY e_entity, e_src, k{f} ORDER BY ts)"
            )
            self.partials[f"d{f}"] = f"count(*) FILTER (WHERE {has} AND nx{f} > g_end)"
        else:
            value = f"k{f}" if sel.text_value else f"j{f}"
            if not sel.text_value:
                self.reads[f"j{f}"] = fx.json(field)
            pick, when, p = (
                ("arg_min", "min", "f") if agg is Aggregation.FIRST else ("arg_max", "max", "l")
            )
            self.partials[f"kn{f}"] = f"count(k{f})"
            self.partials[f"{p}v{value}"] = f"{pick}({value}, (ts, event_id)) FILTER (WHERE {has})"
            self.partials[f"{p}t{f}"] = f"{when}(ts) FILTER (WHERE {has})"

    # ---- SQL ----------------------------------------------------------------------------

    def values(self) -> list[tuple[str, str]]:
        """(column name, SQL) of every value's columns: ``n<i>_<j>``, ``v<i>_<j>``,
        ``t<i>_<j>``, each combining the bands ≤ j of its source."""
        out: list[tuple[str, str]] = []
        for i, sel in enumerate(self.selected):
            agg, field = sel.aggregation, sel.spec.field
            for j, w in enumerate(sel.windows):
                cond = f"e_src = {sel.source} AND band <= {self.band(w)}"
                name = f"{i}_{j}"
                if agg is Aggregation.COUNT:
                    out.append((f"n{name}", _count("c", cond)))
                    continue
                assert field is not None
                f = self.field(field)
                if agg is Aggregation.COUNT_DISTINCT:
                    out.append((f"n{name}", _count(f"d{f}", cond)))
                elif agg in NUMERIC:
                    partial, fn = _EXTREMES.get(agg, ("s", "sum"))
                    out.append((f"v{name}", f"{fn}(CASE WHEN {cond} THEN {partial}{f} END)"))
                    out.append((f"n{name}", _count(f"n{f}", cond)))
                else:
                    value = f"k{f}" if sel.text_value else f"j{f}"
                    pick, when, p = (
                        ("arg_min", "min", "f")
                        if agg is Aggregation.FIRST
                        else ("arg_max", "max", "l")
                    )
                    some = f"{cond} AND kn{f} > 0"
                    out.append((f"v{name}", f"{pick}({p}v{value}, {p}t{f}) FILTER (WHERE {some})"))
                    out.append((f"t{name}", f"{when}({p}t{f}) FILTER (WHERE {some})"))
                    out.append((f"n{name}", _count(f"kn{f}", cond)))
        return out

    def outputs(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """The distinct combinations (SQL → alias ``a<k>``) and (column name, alias)."""
        aliases: dict[str, str] = {}
        columns = []
        for name, sql in self.values():
            alias = aliases.setdefault(sql, f"a{len(aliases)}")
            columns.append((name, alias))
        return aliases, columns

    def ctes(self, params: Params, project_id: str, where: Sequence[str], pairs: str) -> str:
        """``ev`` … ``agg`` (see the module doc); ``pairs`` is the pairs CTE's query."""
        part = ", ".join(f"{sql} AS {name}" for name, sql in self.partials.items())
        combos = ", ".join(f"{sql} AS {alias}" for sql, alias in self.outputs()[0].items())
        return (
            f"{self._events(params, project_id, where)}, pairs AS ({pairs}), "  # noqa: S608
            f"part AS (SELECT g_key, e_src, band, {part} FROM pairs GROUP BY g_key, e_src, band), "
            f"agg AS (SELECT g_key, {combos} FROM part GROUP BY g_key)"
        )

    def band_sql(self, starts: Sequence[str]) -> str:
        if not starts:
            return "0"
        cases = " ".join(f"WHEN ev.ts >= {s} THEN {m}" for m, s in enumerate(starts))
        return f"CASE {cases} ELSE {len(starts)} END"

    def _events(self, params: Params, project_id: str, where: Sequence[str]) -> str:
        fx = self.fx
        entity = fx.entity(self.selected[0].spec.entity_key)
        tests = [f"pipeline_id = {params(p)} AND event = {params(e)}" for p, e in self.sources]
        tag = " ".join(f"WHEN {t} THEN {k}" for k, t in enumerate(tests))
        conds = [
            f"project_id = {params(project_id)}",
            "(" + " OR ".join(f"({t})" for t in tests) + ")",
            f"{entity} IS NOT NULL",
            *where,
        ]
        reads = "".join(f", {sql} AS {name}" for name, sql in self.reads.items())
        ev0 = (
            f"SELECT {entity} AS e_entity, CASE {tag} END AS e_src, ts, event_id{reads} "  # noqa: S608
            f"FROM events WHERE {' AND '.join(conds)}"
        )
        keep = "* EXCLUDE (e_props)" if "e_props" in self.reads else "*"
        if not self.over:
            return f"ev0 AS ({ev0}), ev AS (SELECT {keep} FROM ev0)"  # noqa: S608
        far = params(FAR) if any("$FAR" in sql for sql in self.over.values()) else ""
        over = ", ".join(f"{sql.replace('$FAR', far)} AS {name}" for name, sql in self.over.items())
        return f"ev0 AS ({ev0}), ev AS (SELECT {keep}, {over} FROM ev0)"  # noqa: S608


def _count(partial: str, cond: str) -> str:
    """A sum of partial counts (as DOUBLE: exact below 2^53, and much cheaper in DuckDB than
    its 128-bit integer sums). CASE rather than FILTER: faster there too."""
    return f"sum(CASE WHEN {cond} THEN CAST({partial} AS DOUBLE) END)"


def value_columns(plan: OfflinePlan, table: str = "") -> str:
    """The select list of the value columns, from ``agg``'s aliases."""
    return ", ".join(f"{table}{alias} AS {name}" for name, alias in plan.outputs()[1])


def entities_query(
    plan: OfflinePlan, project_id: str, entity_ids: Sequence[str], t_us: int
) -> tuple[str, list[Any]]:
    """One row per entity of ``entity_ids`` having events (``e_entity`` + value columns)."""
    params = Params()
    end = params(from_micros(t_us))
    starts = [params(from_micros(s)) for s in plan.starts(t_us)]
    entity = plan.fx.entity(plan.selected[0].spec.entity_key)
    where = [f"ts <= {end}", f"list_contains({params(list(entity_ids))}, {entity})"]
    if plan.bounded:
        where.append(f"ts >= {starts[-1]}")
    band = plan.band_sql(starts)
    pairs = f"SELECT e_entity AS g_key, ev.*, {end} AS g_end, {band} AS band FROM ev"  # noqa: S608
    ctes, cols = plan.ctes(params, project_id, where, pairs), value_columns(plan)
    sql = f"WITH {ctes} SELECT g_key AS e_entity, {cols} FROM agg"  # noqa: S608
    return sql, params.values


def labels_query(
    plan: OfflinePlan, project_id: str, t_range: tuple[int, int]
) -> tuple[str, list[Any]]:
    """Every row of the lent table ``lab`` (``l_row``, ``l_entity``, ``l_t`` and ``l_s<m>``:
    the start of band m at ``l_t``), in ``l_row`` order, with its values.
    ``t_range``: the earliest start and the latest t of the rows (to prune events)."""
    params = Params()
    where = [f"ts <= {params(from_micros(t_range[1]))}"]
    starts = [f"l.l_s{m}" for m in range(len(plan.spans))]
    lower = ""
    if plan.bounded:
        where.append(f"ts >= {params(from_micros(t_range[0]))}")
        lower = f" AND ev.ts >= {starts[-1]}"
    band = plan.band_sql(starts)
    pairs = (
        f"SELECT l.l_row AS g_key, ev.*, l.l_t AS g_end, {band} AS band "  # noqa: S608
        f"FROM ev JOIN lab AS l ON ev.e_entity = l.l_entity WHERE ev.ts <= l.l_t{lower}"
    )
    cols = value_columns(plan, "agg.")
    sql = (
        f"WITH {plan.ctes(params, project_id, where, pairs)} SELECT l.l_row, {cols} "  # noqa: S608
        "FROM lab AS l LEFT JOIN agg ON agg.g_key = l.l_row ORDER BY l.l_row"
    )
    return sql, params.values
