"""A brute-force Python reading of the overview's definitions (docs/analytics.md), written
independently of the SQL: plain loops over event dicts."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from dataintel.analytics.params import STEP, AnalyticsParams, Filter, Interval
from dataintel.model.snapshot import AnalyticsSettings

Event = dict[str, Any]
METRICS = (
    "events",
    "active_users",
    "carts_created",
    "carts_abandoned",
    "carts_recovered",
    "revenue",
    "recovered_revenue",
    "interventions_sent",
)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _field(e: Event, f: Filter) -> Any:
    if f.field.column is not None:
        return e.get(f.field.column)
    return e["properties"].get(f.field.prop)


def matches(e: Event, f: Filter) -> bool:
    if f.op == "=":
        return _text(_field(e, f)) == f.value
    if f.op == "!=":
        return (_text(_field(e, f)) or "") != f.value
    value = _number(_field(e, f))
    if value is None or f.number is None:
        return False
    return {
        ">": value > f.number,
        ">=": value >= f.number,
        "<": value < f.number,
        "<=": value <= f.number,
    }[f.op]


def _slot(moment: datetime, params: AnalyticsParams) -> tuple[int, int] | None:
    previous = params.previous()
    if moment >= params.start:
        period, origin = 1, params.start
    elif moment >= previous.start:
        period, origin = 0, previous.start
    else:
        return None
    if params.interval is Interval.MONTH:
        bucket = (moment.year * 12 + moment.month) - (origin.year * 12 + origin.month)
    else:
        bucket = (moment - origin) // STEP[params.interval]
    return period, bucket


def overview(
    events: list[Event], project_id: str, params: AnalyticsParams, s: AnalyticsSettings
) -> dict[Any, dict[str, float]]:
    """{(period, bucket): numbers, ("total", period): numbers}."""
    ev = [
        e
        for e in events
        if e["project_id"] == project_id
        and e["ts"] < params.as_of
        and all(matches(e, f) for f in params.filters)
    ]
    out: dict[Any, dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0.0))
    users: dict[Any, set[str]] = defaultdict(set)

    def add(moment: datetime, metric: str, value: float = 1.0) -> None:
        slot = _slot(moment, params)
        if slot is not None:
            out[slot][metric] += value
            out[("total", slot[0])][metric] += value

    for e in ev:
        add(e["ts"], "events")
        if e["user_id"] is not None and _slot(e["ts"], params) is not None:
            slot = _slot(e["ts"], params)
            users[slot].add(e["user_id"])
            users[("total", slot[0])].add(e["user_id"])  # type: ignore[index]
        if e["event"] == s.purchase_event:
            add(e["ts"], "revenue", _number(e["properties"].get(s.revenue_field)) or 0.0)
    for slot, seen in users.items():
        out[slot]["active_users"] = float(len(seen))
    _carts(ev, params, s, add)
    _interventions(ev, add)
    return out


def _carts(ev: list[Event], params: AnalyticsParams, s: AnalyticsSettings, add: Any) -> None:
    idle = timedelta(seconds=s.seconds("abandon_after"))
    horizon = timedelta(seconds=s.seconds("outcome_horizon"))
    by_cart: dict[str, list[Event]] = defaultdict(list)
    for e in ev:
        if e["cart_id"] is not None and (
            e["event"] in s.cart_events or e["event"] == s.purchase_event
        ):
            by_cart[e["cart_id"]].append(e)
    for seq in by_cart.values():
        seq.sort(key=lambda e: (e["ts"], e["event"] == s.purchase_event, e["event_id"]))
        cart_times = [e["ts"] for e in seq if e["event"] != s.purchase_event]
        if not cart_times:
            continue
        add(min(cart_times), "carts_created")
        idle_from = None
        for i, e in enumerate(seq):
            if e["event"] == s.purchase_event:
                continue
            following = seq[i + 1]["ts"] if i + 1 < len(seq) else None
            if following is None or following > e["ts"] + idle:
                idle_from = e["ts"]
                break
        if idle_from is None or idle_from + idle >= params.as_of:
            continue
        abandoned = idle_from + idle
        add(abandoned, "carts_abandoned")
        buys = [
            e
            for e in seq
            if e["event"] == s.purchase_event and abandoned < e["ts"] <= abandoned + horizon
        ]
        if buys:
            first = min(buys, key=lambda e: (e["ts"], e["event_id"]))
            add(abandoned, "carts_recovered")
            revenue = _number(first["properties"].get(s.revenue_field)) or 0.0
            add(abandoned, "recovered_revenue", revenue)


def _interventions(ev: list[Event], add: Any) -> None:
    first: dict[str, datetime] = {}
    for e in ev:
        if e["event"] != "intervention" or e["properties"].get("status") == "failed":
            continue
        key = _text(e["properties"].get("intervention_id")) or e["event_id"]
        first[key] = min(first.get(key, e["ts"]), e["ts"])
    for moment in first.values():
        add(moment, "interventions_sent")


def generate(
    seed: int, n: int, start: datetime, days: float, project_id: str = "p1"
) -> list[Event]:
    """Random shop, AI-engine and intervention events: bursts of cart activity per cart,
    purchases (some soon, some days later, some never), ties on the same second, events
    without user or cart, interventions with repeated ids and failures."""
    rng = random.Random(seed)
    out: list[Event] = []
    span = days * 86400

    def event(name: str, when: datetime, **fields: Any) -> None:
        out.append(
            {
                "project_id": project_id,
                "event_id": f"{project_id}-{seed}-{len(out):06d}",
                "event": name,
                "ts": when.replace(microsecond=0),
                "user_id": fields.pop("user_id", None),
                "cart_id": fields.pop("cart_id", None),
                "properties": fields,
            }
        )

    while len(out) < n:
        user = f"u{rng.randrange(60)}" if rng.random() < 0.95 else None
        cart = f"c{len(out)}"
        t = start + timedelta(seconds=rng.uniform(0, span))
        for _ in range(rng.randrange(1, 4)):
            event(
                rng.choice(["cart_add", "cart_add", "checkout_start"]),
                t,
                user_id=user,
                cart_id=cart,
                product_id="p1",
                price=rng.randrange(1, 90),
            )
            t += timedelta(minutes=rng.choice([0, 1, 5, 20, 29, 30, 31, 45, 120]))
        event("page_view", t, user_id=user, url="/")
        if rng.random() < 0.5:
            event(
                "prediction",
                t,
                user_id=user,
                cart_id=cart,
                probability=rng.random(),
                model_version="m1",
            )
        if rng.random() < 0.4:
            iid = f"i{rng.randrange(10_000)}" if rng.random() < 0.9 else ""
            for status in rng.sample(["sent", "delivered", "opened", "failed"], 2):
                event(
                    "intervention",
                    t + timedelta(minutes=40),
                    user_id=user,
                    cart_id=cart,
                    intervention_id=iid,
                    channel=rng.choice(["email", "sms"]),
                    action="reminder",
                    status=status,
                )
        r = rng.random()
        if r < 0.6:
            later = rng.choice([0, 10, 30, 31, 60, 600, 3000, 10_081, 12_000])
            revenue: Any = round(rng.uniform(5, 300), 2) if rng.random() < 0.9 else None
            event(
                "purchase",
                t + timedelta(minutes=later),
                user_id=user,
                cart_id=cart if rng.random() < 0.95 else None,
                order_id=f"o{len(out)}",
                revenue=revenue,
                currency=rng.choice(["USD", "EUR"]),
            )
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
