"""POST /v1/features/batch-compute: values as of t for many entities chosen by a filter,
computed offline in the analytics store, one page (ordered by entity id) at a time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.config.deployments.active import ActiveConfig
from dataintel.errors import InvalidInput
from dataintel.features.offline.compute import compute_offline, to_micros
from dataintel.features.online.partials import entity_sql
from dataintel.features.serving.schemas import (
    MAX_FEATURE_NAMES,
    EntityFeatures,
    EntityIdText,
    FeatureNameText,
    FeatureTime,
)
from dataintel.features.serving.service import as_datetime
from dataintel.model.snapshot import FeatureSpec
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.queries import from_micros


class ExplicitIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ids"]
    ids: list[EntityIdText] = Field(min_length=1, max_length=100_000)


class ActiveBetween(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["active"]
    start: FeatureTime = Field(description="Entities with an event at or after this time …")
    end: FeatureTime = Field(description="… and before this one (event time).")
    events: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, max_length=100
    )


class AbandonedCarts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["abandoned_carts"]
    idle_minutes: int = Field(ge=1, le=525_600, description="No cart event for this long …")
    cart_event: str = Field(default="cart_add", max_length=128)
    purchase_event: str = Field(default="purchase", max_length=128)
    lookback_days: int = Field(default=30, ge=1, le=365, description="Carts active since.")


Selector = Annotated[ExplicitIds | ActiveBetween | AbandonedCarts, Field(discriminator="type")]


class BatchComputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_key: str = Field(default="user_id", pattern=r"^[a-z_][a-z0-9_]{0,63}$")
    select: Selector
    as_of: FeatureTime | None = Field(
        default=None, description="t; default now (1970-01-01 ≤ t < 2262-01-01, UTC)."
    )
    features: list[FeatureNameText] | None = Field(default=None, max_length=MAX_FEATURE_NAMES)
    limit: int = Field(default=500, ge=1, le=5_000, description="Entities per page.")
    cursor: EntityIdText | None = Field(default=None, description="next_cursor.")


class BatchComputePage(BaseModel):
    as_of: datetime
    results: list[EntityFeatures]
    next_cursor: str | None = Field(description="Pass back as cursor; null on the last page.")


def _specs(config: ActiveConfig, entity_key: str, names: list[str] | None) -> list[FeatureSpec]:
    specs = [
        f
        for f in config.snapshot.features
        if f.enabled and f.entity_key == entity_key and not getattr(f, "expression", None)
    ]
    if names is None:
        return specs
    chosen = []
    for name in names:
        spec = next((f for f in specs if f.name == name), None)
        if spec is None:
            raise InvalidInput.field(
                ["body", "features"], f"'{name}' is not a feature of {entity_key}"
            )
        chosen.append(spec)
    return chosen


def select_ids(
    analytics: AnalyticsStore,
    project_id: str,
    entity_key: str,
    select: ExplicitIds | ActiveBetween | AbandonedCarts,
    t_us: int,
    after: str | None,
    limit: int,
) -> list[str]:
    if isinstance(select, ExplicitIds):
        ids = sorted(set(select.ids))
        return [i for i in ids if after is None or i > after][:limit]
    entity = entity_sql(entity_key)
    params: list[Any] = [project_id]

    def arg(value: Any) -> str:  # positional $n: the order of ? is not the text order
        params.append(value)
        return f"${len(params)}"

    having = ""
    if isinstance(select, ActiveBetween):
        where = f"ts >= {arg(select.start)} AND ts < {arg(select.end)}"
        if select.events:
            where += f" AND list_contains({arg(select.events)}, event)"
    else:
        if entity_key != "cart_id":
            raise InvalidInput.field(["body", "entity_key"], "abandoned_carts needs cart_id")
        t = from_micros(t_us)
        where = (
            f"ts <= {arg(t)} "
            f"AND ts >= {arg(from_micros(t_us - select.lookback_days * 86_400_000_000))}"
        )
        cart, bought = arg(select.cart_event), arg(select.purchase_event)
        idle = arg(from_micros(t_us - select.idle_minutes * 60_000_000))
        last_cart = f"max(CASE WHEN event = {cart} THEN ts END)"
        last_buy = f"max(CASE WHEN event = {bought} THEN ts END)"
        having = (
            f" HAVING {last_cart} <= {idle} AND ({last_buy} IS NULL OR {last_buy} < {last_cart})"
        )
    query = (
        f"SELECT {entity} AS id FROM events WHERE project_id = $1 AND {entity} IS NOT NULL"  # noqa: S608
        f" AND {where}"
    )
    if after is not None:
        query += f" AND {entity} > {arg(after)}"
    query += f" GROUP BY id{having} ORDER BY id LIMIT {int(limit)}"
    table = analytics.sql(query, params)
    return [str(v) for v in table.column("id").to_pylist()]


def batch_compute(
    analytics: AnalyticsStore,
    config: ActiveConfig,
    body: BatchComputeRequest,
    now_us: int,
) -> BatchComputePage:
    t = now_us if body.as_of is None else to_micros(body.as_of)
    specs = _specs(config, body.entity_key, body.features)
    ids = select_ids(
        analytics, config.project_id, body.entity_key, body.select, t, body.cursor, body.limit
    )
    values = (
        compute_offline(
            analytics, config.project_id, specs, body.entity_key, ids, t, config.snapshot
        )
        if ids
        else {}
    )
    results = [
        EntityFeatures(
            entity_key=body.entity_key,
            entity_id=i,
            as_of=as_datetime(t),
            values=values.get(i, {}),
            versions={s.name: s.version for s in specs},
        )
        for i in ids
    ]
    return BatchComputePage(
        as_of=as_datetime(t),
        results=results,
        next_cursor=ids[-1] if len(ids) == body.limit else None,
    )
