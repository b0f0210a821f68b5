"""Batch feature values as of past times (training sets): the value of the latest run whose
computation time is at most t, exactly as serving answered after that run.

Every run is kept in the analytics store's ``batch_feature_values`` with a marker row
(``RUN_MARKER``: the run's empty value), so the runs of a feature version are known even
when one found no entity. Per label row the run is picked here (a binary search over the
few run times); ONE query per feature then equi-joins the rows (lent as a table) to the
values of their runs. An entity the run did not find gets the run's empty value; a time
before the first run gets null.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from dataintel.model.batch import BatchFeatureSpec
from dataintel.storage.analytics.port import RUN_MARKER, AnalyticsStore

_RUNS = (
    "SELECT computed_at, value FROM batch_feature_values WHERE project_id = ? AND feature = ? "
    "AND version = ? AND entity = ? ORDER BY computed_at"
)
_VALUES = (
    "SELECT bl.l_row AS l_row, v.value AS value FROM bl JOIN batch_feature_values AS v "
    "ON v.computed_at = bl.l_at AND v.entity = bl.l_entity "
    "WHERE v.project_id = ? AND v.feature = ? AND v.version = ?"
)
TIME = pa.timestamp("us", tz="UTC")


def select_batch(
    batch: Sequence[BatchFeatureSpec], entity_key: str, names: Sequence[str] | None
) -> tuple[list[BatchFeatureSpec], list[str] | None]:
    """The enabled batch features of ``entity_key`` that ``names`` asks for (None: all), and
    the names left for the real-time features (None: all of them)."""
    mine = {b.name: b for b in batch if b.enabled and b.entity_key == entity_key}
    if names is None:
        return list(mine.values()), None
    return [mine[n] for n in dict.fromkeys(names) if n in mine], [n for n in names if n not in mine]


def as_of(
    analytics: AnalyticsStore,
    project_id: str,
    spec: BatchFeatureSpec,
    entities: pa.Array,
    times: pa.Array,
) -> pa.Array:
    """Per row (entity id, t): the feature's value as of t, as JSON text (null: no run yet)."""
    runs = analytics.sql(_RUNS, [project_id, spec.name, spec.version, RUN_MARKER])
    run_us = np.asarray(runs.column("computed_at").cast(pa.int64()).to_numpy(), dtype=np.int64)
    empties = [str(v) for v in runs.column("value").to_pylist()]
    t = np.asarray(times.cast(TIME).cast(pa.int64()).to_numpy(), dtype=np.int64)
    pick = np.searchsorted(run_us, t, side="right") - 1
    out: list[str | None] = [empties[i] if i >= 0 else None for i in pick.tolist()]
    rows = np.flatnonzero(pick >= 0)
    if rows.size == 0:
        return pa.array(out, pa.string())
    lent = pa.table(
        {
            "l_row": pa.array(rows, pa.int64()),
            "l_entity": entities.take(pa.array(rows)),
            "l_at": pa.array(run_us[pick[rows]], pa.int64()).cast(TIME),
        }
    )
    params = [project_id, spec.name, spec.version]
    for batch in analytics.sql_batches(_VALUES, params, {"bl": lent}):
        for row, value in zip(
            batch.column("l_row").to_pylist(), batch.column("value").to_pylist(), strict=True
        ):
            if value:  # ClickHouse answers '' for no value; a stored value is JSON text
                out[int(row)] = str(value)
    return pa.array(out, pa.string())
