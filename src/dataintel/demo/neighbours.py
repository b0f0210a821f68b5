"""The platform's two neighbours, simulated on the demo's real shop events.

- The AI engine: 30 s after a cart's first add it scores the cart with a logistic regression
  trained on a point-in-time training set from ``POST /v1/features/historical`` (the
  service's own features of the user and the cart; label: the cart was purchased within the
  outcome horizon after the score). Predictions are out of sample (two folds: each half of
  the carts is scored by the model fitted on the other half). Model ``demo-lr-1`` (user
  features) scores the carts of the first four days, ``demo-lr-2`` (user and cart features)
  the later ones, so the model page has two versions to compare.
- The intervention engine: when a cart is abandoned (no purchase ``ABANDON_AFTER`` after its
  last add), it holds out 10 % of the carts (a ``holdout`` event, the control group) and sends
  the others an intervention with the recommended action on a channel, followed by the
  delivery / open / click statuses some of them reach.

What the shoppers did is as in the data: the simulated interventions change no purchase, so
the demo's uplift is about zero by construction (docs/dashboard.md says so).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dataintel.demo.http import Api
from dataintel.demo.logistic import fit

PLATFORM = "platform"
ABANDON_AFTER = timedelta(minutes=2)  # the demo project's analytics.abandon_after
HORIZON = timedelta(days=1)  # its analytics.outcome_horizon
SCORE_AFTER = timedelta(seconds=30)
HOLDOUT_SHARE = 0.10
USER_FEATURES = ["cart_adds_24h", "avg_price_24h", "max_price_24h", "distinct_products_1h"]
CART_FEATURES = ["cart_value_1h", "cart_value_lifetime"]
CHANNELS = (("websocket", 4), ("email", 3), ("push", 2), ("sms", 1))
BATCH = 2_000


@dataclass
class Cart:
    cart_id: str
    user_id: str
    first_add: datetime
    last_add: datetime
    purchases: list[datetime] = field(default_factory=list)

    @property
    def scored_at(self) -> datetime:
        return self.first_add + SCORE_AFTER

    def converted(self) -> bool:
        """Purchased within the horizon after the score (the model's label)."""
        return any(self.scored_at < p <= self.scored_at + HORIZON for p in self.purchases)

    def abandoned_at(self) -> datetime | None:
        """When the cart counts as abandoned (None: purchased before that)."""
        at = self.last_add + ABANDON_AFTER
        return None if any(p <= at for p in self.purchases) else at


@dataclass(frozen=True)
class Summary:
    predictions: int
    interventions: int
    holdouts: int


def carts_of(events: Sequence[dict[str, Any]]) -> list[Cart]:
    carts: dict[str, Cart] = {}
    purchases: dict[str, list[datetime]] = {}
    for e in events:
        cart_id, when = e.get("cart_id"), datetime.fromisoformat(e["timestamp"])
        if not cart_id:
            continue
        if e["event"] == "cart_add":
            found = carts.get(cart_id)
            if found is None:
                carts[cart_id] = Cart(cart_id, e["user_id"], when, when)
            else:
                found.last_add = max(found.last_add, when)
        elif e["event"] == "purchase":
            purchases.setdefault(cart_id, []).append(when)
    for cart_id, cart in carts.items():
        cart.purchases = sorted(purchases.get(cart_id, []))
    return sorted(carts.values(), key=lambda c: (c.first_add, c.cart_id))


def simulate(api: Api, events: Sequence[dict[str, Any]], project_id: str, now: datetime) -> Summary:
    carts = [c for c in carts_of(events) if c.scored_at <= now]
    if len(carts) < 10:
        return Summary(0, 0, 0)
    user = _features(api, "user_id", [(c.user_id, c.scored_at) for c in carts], USER_FEATURES)
    cart = _features(api, "cart_id", [(c.cart_id, c.scored_at) for c in carts], CART_FEATURES)
    labels = np.array([1.0 if c.converted() else 0.0 for c in carts])
    folds = np.array([_hash(c.cart_id) % 2 for c in carts])
    first = _cross_fitted(user, labels, folds)
    second = _cross_fitted(np.hstack([user, cart]), labels, folds)
    switch = now - timedelta(days=3)
    out: list[dict[str, Any]] = []
    counts = {"prediction": 0, "intervention": 0, "holdout": 0}
    for i, c in enumerate(carts):
        late = c.scored_at >= switch
        p = float(second[i] if late else first[i])
        action = _action(p)
        version = "demo-lr-2" if late else "demo-lr-1"
        out.append(_prediction(c, p, action, version))
        counts["prediction"] += 1
        at = c.abandoned_at()
        if at is None or at > now:
            continue
        rng = random.Random(_hash(c.cart_id))  # noqa: S311 - a simulation, not a secret
        if rng.random() < HOLDOUT_SHARE:
            out.append(
                _event(
                    c,
                    "holdout",
                    at,
                    f"holdout-{c.cart_id}",
                    {"reason": "random 10%", "campaign": "recovery", "model_version": version},
                )
            )
            counts["holdout"] += 1
        elif action != "none":
            out.extend(
                e for e in _intervention(c, action, at, rng) if e["timestamp"] <= now.isoformat()
            )
            counts["intervention"] += 1
    out.sort(key=lambda e: e["timestamp"])
    for batch in _batches(out):
        api.call("POST", f"/ingest/{project_id}/{PLATFORM}/batch?wait=processed", batch)
    return Summary(counts["prediction"], counts["intervention"], counts["holdout"])


def _features(
    api: Api, entity_key: str, rows: list[tuple[str, datetime]], names: list[str]
) -> np.ndarray:
    body = {
        "entity_key": entity_key,
        "features": names,
        "rows": [{"entity_id": e, "timestamp": t.isoformat()} for e, t in rows],
    }
    answer = api.call("POST", "/v1/features/historical", body)
    records = answer["rows"] if isinstance(answer, dict) else answer
    return np.array([[float(r.get(n) or 0.0) for n in names] for r in records], dtype=np.float64)


def _cross_fitted(x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    out = np.full(len(y), float(y.mean()))
    for k in (0, 1):
        train, test = folds != k, folds == k
        if test.any() and len(np.unique(y[train])) == 2:
            out[test] = fit(x[train], y[train]).predict(x[test])
    return out


def _action(p: float) -> str:
    if p >= 0.8:
        return "none"  # likely to buy anyway
    if p >= 0.5:
        return "reminder"
    if p >= 0.2:
        return "urgency"
    return "discount"


def _prediction(c: Cart, p: float, action: str, version: str) -> dict[str, Any]:
    props = {
        "probability": round(p, 6),
        "confidence": round(abs(p - 0.5) * 2, 6),
        "recommended_action": action,
        "model_version": version,
    }
    return _event(c, "prediction", c.scored_at, f"prediction-{c.cart_id}", props)


def _intervention(
    c: Cart, action: str, at: datetime, rng: random.Random
) -> Iterator[dict[str, Any]]:
    channel = rng.choices([n for n, _ in CHANNELS], [w for _, w in CHANNELS])[0]
    ident = f"iv-{c.cart_id}"
    base = {
        "intervention_id": ident,
        "channel": channel,
        "action": action,
        "campaign": f"recovery-{action}",
    }
    steps = [
        ("sent", 5, 1.0),
        ("delivered", 10, 0.95),
        ("opened", 120, 0.45),
        ("clicked", 300, 0.4),
    ]
    for status, seconds, chance in steps:
        if rng.random() > chance:
            return
        yield _event(
            c,
            "intervention",
            at + timedelta(seconds=seconds),
            f"{ident}-{status}",
            {**base, "status": status},
        )


def _event(
    c: Cart, name: str, at: datetime, event_id: str, props: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event": name,
        "timestamp": at.isoformat(),
        "user_id": c.user_id,
        "cart_id": c.cart_id,
        "properties": props,
    }


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(events), BATCH):
        yield events[i : i + BATCH]
