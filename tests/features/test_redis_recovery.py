"""Redis after a crash between its entity scripts and its positions: the processor replays
with other batch boundaries, the entities that had applied part of the replay report a
conflict, the sink recomputes them from the entries after their stored offset, and the
state ends equal to one run of the same events on a fresh store.

(The embedded store commits state and positions in one transaction, so this crash cannot
leave it half-applied.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import apply_yaml
from tests.features.conftest import OnlineFactory
from tests.features.streams import PROPERTY_FEATURES, Driver, stored

from dataintel.config.deployments.active import CONFIGS
from dataintel.features.online.engine import FeatureEngine
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.online.port import ApplyOutcome, OnlineStore
from dataintel.storage.online.redis import RedisOnline

SECOND = 1_000_000
T0 = 1_767_225_600 * SECOND + 123_456
USERS = ["u0", "u1", "u2"]


def events() -> list[Any]:
    return [
        stored(
            "prop",
            f"rec-{i:03d}",
            T0 - (60 - i) * SECOND,
            USERS[i % 3],
            {"x": i % 7 + 0.5, "k": f"k{i % 4}"},
            "c1" if i % 2 else None,
        )
        for i in range(60)
    ]


def driver(app: Any, online: OnlineStore, tmp_path: Path, name: str) -> Driver:
    state = app.state.dataintel
    analytics = open_analytics(f"duckdb:///{tmp_path}/{name}.duckdb")
    engine = FeatureEngine(online, analytics, state.port(CONFIGS), state.sessions, lambda: T0)
    return Driver(engine, analytics, online, "prop")


@pytest.mark.parametrize("online_factory", ["redis"], indirect=True)
def test_a_replay_after_a_crash_before_the_positions_ends_exact(
    app: Any, online_factory: OnlineFactory, tmp_path: Path
) -> None:
    apply_yaml(app, PROPERTY_FEATURES)
    online = online_factory()
    assert isinstance(online, RedisOnline)
    crashed = driver(app, online, tmp_path, "crashed")
    entries = crashed.append(events())
    crashed.apply(entries[:30], T0)
    assert online.positions() == {0: 30}
    # The crash: every entity script ran, the positions were never recorded.
    online._client.delete(f"{online._prefix}:positions")
    outcomes: list[tuple[int, int, int]] = []  # applied, skipped, conflicts of each call
    apply = online.apply

    def spy(groups: Any, ends: Any) -> ApplyOutcome:
        outcome = apply(groups, ends)
        outcomes.append((outcome.applied, outcome.skipped, len(outcome.conflicts)))
        return outcome

    online.apply = spy  # type: ignore[method-assign]
    # The restarted processor batches differently: from offset 20 (say, the analytics
    # store's position) to the end, so every user and the cart overlap their stored offset.
    crashed.apply(entries[20:], T0)
    entities = len(USERS) + 1  # and the cart
    assert outcomes[0] == (0, 0, entities)  # each overlaps what it had applied
    assert outcomes[1:] == [(1, 0, 0)] * entities  # each recomputed after its offset
    assert online.positions() == {0: 60}

    reference = driver(app, online_factory(), tmp_path, "reference")
    reference.apply(reference.append(events()), T0)
    for key, ids in (("user_id", USERS), ("cart_id", ["c1"])):
        for t in (T0, T0 + 30 * SECOND, T0 + 3600 * SECOND):
            got = crashed.online_values(key, ids, t)
            assert got == reference.online_values(key, ids, t)
            assert any(v for values in got.values() for v in values.values())
    for d in (crashed, reference):
        d.engine.close()
        d.analytics.close()
