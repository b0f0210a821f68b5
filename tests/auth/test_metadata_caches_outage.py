"""A metadata outage longer than the per-process caches' TTLs (API keys, the deployed config,
project ids): what this process read before is still used (serving continues, ADR 0017);
what it never read gets the outage error (503); once the store answers, it decides again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc

from dataintel.auth import authenticate
from dataintel.auth.authenticate import api_key_principal_async
from dataintel.auth.key_cache import KeyCache
from dataintel.auth.permissions import Role
from dataintel.auth.principal import Principal

KNOWN = "di_keyknown_secret"
UNKNOWN = "di_keyother_secret"
PRINCIPAL = Principal("key:keyknown", frozenset({Role.SERVICE}), frozenset({"shop"}), "keyknown")


def _down(*_: Any) -> Principal:
    raise sa_exc.OperationalError("SELECT", {}, ConnectionRefusedError("down"))


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch) -> KeyCache:
    fresh = KeyCache(ttl_s=0.05)
    monkeypatch.setattr(authenticate, "KEY_CACHE", fresh)
    fresh.put(KNOWN, PRINCIPAL, None)
    time.sleep(0.1)  # older than the TTL: a lookup is due
    return fresh


def test_a_verified_key_outlives_the_ttl_only_while_the_store_is_down(
    cache: KeyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.get(KNOWN) is None  # due for a lookup
    monkeypatch.setattr(authenticate, "_lookup", _down)
    assert asyncio.run(api_key_principal_async(KNOWN, None)) == PRINCIPAL  # type: ignore[arg-type]
    with pytest.raises(sa_exc.OperationalError):
        asyncio.run(api_key_principal_async(UNKNOWN, None))  # type: ignore[arg-type]

    looked_up = []

    def _up(presented: str, _sessions: Any) -> Principal:
        looked_up.append(presented)
        raise authenticate.Unauthorized("API key revoked")

    monkeypatch.setattr(authenticate, "_lookup", _up)
    # The store answers again: its word counts, not the stale entry.
    with pytest.raises(authenticate.Unauthorized):
        asyncio.run(api_key_principal_async(KNOWN, None))  # type: ignore[arg-type]
    assert looked_up == [KNOWN]
    # ...and a key the store refused is not accepted in the next outage.
    monkeypatch.setattr(authenticate, "_lookup", _down)
    with pytest.raises(sa_exc.OperationalError):
        asyncio.run(api_key_principal_async(KNOWN, None))  # type: ignore[arg-type]


def test_the_stale_entry_has_a_bound_and_respects_expiry(cache: KeyCache) -> None:
    assert cache.get_stale(KNOWN) == PRINCIPAL
    assert cache.get_stale(KNOWN, max_age_s=0.01) is None
    expired = KeyCache()
    expired.put(KNOWN, PRINCIPAL, authenticate.utcnow())
    assert expired.get_stale(KNOWN) is None


def test_the_deployed_config_and_project_ids_outlive_their_ttl_while_the_store_is_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataintel.api import fast_scope
    from dataintel.config.deployments.active import ActiveConfigCache

    configs = ActiveConfigCache(None, ttl_seconds=0.0)  # type: ignore[arg-type]
    monkeypatch.setattr(configs, "_load", lambda project_id: ("config of", project_id))
    assert configs.get("shop") == ("config of", "shop")
    monkeypatch.setattr(configs, "_load", _down)
    assert configs.get("shop") == ("config of", "shop")  # the last one read
    with pytest.raises(sa_exc.OperationalError):
        configs.get("other")  # never read here: the outage's 503

    monkeypatch.setattr(fast_scope, "FOUND_TTL_SECONDS", 0.0)
    projects = fast_scope.ProjectDirectory(None)  # type: ignore[arg-type]
    monkeypatch.setattr(projects, "_load", lambda project_id: True)
    assert asyncio.run(projects.exists("shop"))
    monkeypatch.setattr(projects, "_load", _down)
    assert asyncio.run(projects.exists("shop"))
    with pytest.raises(sa_exc.OperationalError):
        asyncio.run(projects.exists("other"))
