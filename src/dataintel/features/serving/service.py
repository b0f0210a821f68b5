"""Serving: feature vectors per entity at t = now, from the OnlineStore, in one round trip.

The deployed config is compiled once per version into a ``Catalog`` (plans per entity key,
value names, derived features); a request reads the blobs of the selected feature versions
for all its entities at once (``OnlineStore.aread``: in the event loop, no thread hop) and
evaluates the windows (``features.evaluate``: equal to ``tiles.evaluate``, over tiles sorted
once per blob).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfig, ActiveConfigCache
from dataintel.errors import InvalidInput
from dataintel.features.online.plans import OWNER_FIELD, FeaturePlan, owner_plan, plan_project
from dataintel.features.online.sink import now_us
from dataintel.features.serving.derived import DerivedFeature, compile_derived, evaluate_derived
from dataintel.features.serving.evaluate import evaluate
from dataintel.model.batch import BatchFeatureSpec, duration_seconds
from dataintel.model.tiles import LEVELS, SIZES, WindowSpec
from dataintel.storage.breakers import BackendFailed, BackendUnavailable
from dataintel.storage.online.port import BatchValue, Blob, EntityRef, OnlineStore

BUILT_TTL_SECONDS = 1.0
SELECTIONS_CACHED = 1024  # per catalog: selections by (entity key, requested names)


@dataclass
class Selection:
    """What to serve for one entity key: plans with their chosen windows, derived features."""

    plans: list[tuple[FeaturePlan, tuple[WindowSpec, ...]]] = field(default_factory=list)
    derived: list[DerivedFeature] = field(default_factory=list)
    batch: list[BatchFeatureSpec] = field(default_factory=list)
    _versions: dict[str, int] | None = None

    @cached_property
    def fields(self) -> list[str]:
        return [p.state_field for p, _ in self.plans]

    @cached_property
    def batch_fields(self) -> list[str]:
        return [b.state_field for b in self.batch]

    @cached_property
    def sources(self) -> list[str]:
        """Per plan, the source its latest event time is reported under."""
        return [f"{p.pipeline_id}.{p.source_event}" for p, _ in self.plans]

    def versions(self, deployed: dict[str, int]) -> dict[str, int]:
        """The version of every selected feature (``deployed``: the versions of the catalog
        the selection belongs to, so the answer is kept; callers do not mutate it)."""
        if self._versions is None:
            self._versions = (
                {p.name: deployed.get(p.name, p.version) for p, _ in self.plans}
                | {d.name: d.version for d in self.derived}
                | {b.name: b.version for b in self.batch}
            )
        return self._versions


@dataclass
class Catalog:
    version: int | None
    plans: dict[str, list[FeaturePlan]]  # entity key → plans
    derived: dict[str, list[DerivedFeature]]  # entity key → derived features
    versions: dict[str, int]  # feature name → version
    batch: dict[str, list[BatchFeatureSpec]] = field(default_factory=dict)  # entity key → specs
    _selections: dict[tuple[str, tuple[str, ...] | None, str], Selection] = field(
        default_factory=dict
    )

    def select(self, entity_key: str, names: Sequence[str] | None, loc: str) -> Selection:
        """The selection for ``names`` (None: everything), remembered per catalog (a catalog
        is one config version, so a selection never changes; callers do not mutate it)."""
        key = (entity_key, None if names is None else tuple(names), loc)
        hit = self._selections.get(key)
        if hit is None:
            hit = self._select(entity_key, names, loc)
            if len(self._selections) < SELECTIONS_CACHED:
                self._selections[key] = hit
        return hit

    def _select(self, entity_key: str, names: Sequence[str] | None, loc: str) -> Selection:
        plans = self.plans.get(entity_key, [])
        derived = self.derived.get(entity_key, [])
        batch = {b.name: b for b in self.batch.get(entity_key, [])}
        if names is None:
            return Selection([(p, p.windows) for p in plans], list(derived), list(batch.values()))
        chosen: dict[str, set[str]] = {}
        picked: list[DerivedFeature] = []
        batched = [batch[n] for n in dict.fromkeys(names) if n in batch]
        for name in names:
            if name not in batch and not self._pick(name, plans, derived, chosen, picked):
                raise InvalidInput.field(
                    ["query", loc], f"'{name}' is neither a feature nor a value of {entity_key}"
                )
        # A derived feature needs the values it references (and the derived ones among them).
        by_name = {d.name: d for d in derived}
        todo = list(picked)
        while todo:
            for ref in todo.pop().names:
                if ref in by_name and by_name[ref] not in picked:
                    picked.append(by_name[ref])
                    todo.append(by_name[ref])
                else:
                    self._pick(ref, plans, [], chosen, [])
        picked = [d for d in derived if d in picked]  # dependency order
        selection = Selection(derived=picked, batch=batched)
        for plan in plans:
            if plan.name in chosen:
                wanted = chosen[plan.name]
                selection.plans.append(
                    (plan, tuple(w for w in plan.windows if w.value_name in wanted))
                )
        return selection

    @staticmethod
    def _pick(
        name: str,
        plans: Sequence[FeaturePlan],
        derived: Sequence[DerivedFeature],
        chosen: dict[str, set[str]],
        picked: list[DerivedFeature],
    ) -> bool:
        for plan in plans:
            if name == plan.name:
                chosen.setdefault(plan.name, set()).update(w.value_name for w in plan.windows)
                return True
            for w in plan.windows:
                if name == w.value_name:
                    chosen.setdefault(plan.name, set()).add(name)
                    return True
        for d in derived:
            if name == d.name:
                if d not in picked:
                    picked.append(d)
                return True
        return False


def build_catalog(config: ActiveConfig) -> Catalog:
    plans: dict[str, list[FeaturePlan]] = {}
    for plan in plan_project(config.project_id, config.snapshot):
        if plan.state_field != OWNER_FIELD:
            plans.setdefault(plan.entity_key, []).append(plan)
    derived: dict[str, list[DerivedFeature]] = {}
    for d in compile_derived(config.snapshot):
        derived.setdefault(d.entity_key, []).append(d)
    versions = {f.name: f.version for f in config.snapshot.features if f.enabled}
    versions |= {d.name: d.version for d in config.snapshot.derived if d.enabled}
    batch: dict[str, list[BatchFeatureSpec]] = {}
    for b in config.snapshot.batch:
        if b.enabled:
            batch.setdefault(b.entity_key, []).append(b)
    return Catalog(config.version, plans, derived, versions, batch)


class FeatureServer:
    """Vectors from the online store. When the store is down (its circuit breaker) or slower
    than ``timeout_s``, an entity this process served recently gets that vector again,
    marked ``stale`` with its age (up to ``stale_entries`` vectors are kept); any other
    entity gets the 503 naming the store."""

    def __init__(
        self,
        online: OnlineStore,
        configs: ActiveConfigCache,
        timeout_s: float = 1.0,
        stale_entries: int = 50_000,
        lookups: Any = None,
    ) -> None:
        """``lookups``: a counter labelled found=true|false, per entity read (hit rate)."""
        self.online = online
        self._hits = lookups.labels("true") if lookups is not None else None
        self._misses = lookups.labels("false") if lookups is not None else None
        self.configs = configs
        self.timeout_s = timeout_s
        self._catalogs: dict[tuple[str, int | None], Catalog] = {}
        self._built: dict[tuple[str, int | None], tuple[float, set[str]]] = {}
        self._recent = RecentVectors(stale_entries)
        # A timeout only cuts a read that waits on I/O (Redis); the embedded store reads in
        # the event loop, where it would only cost time (~10 µs a request).
        self._timed = bool(getattr(online, "async_reads", False))

    async def catalog(self, project_id: str) -> Catalog:
        config = await self.configs.aget(project_id)
        key = (project_id, config.version)
        catalog = self._catalogs.get(key)
        if catalog is None:
            catalog = self._catalogs[key] = build_catalog(config)
        return catalog

    async def built(self, project_id: str, *, fresh: bool = False) -> set[str]:
        """The built fields, cached for a second per config version: a deploy or rollback
        reads them afresh (a re-activated version may have been unmarked meanwhile)."""
        key = (project_id, (await self.configs.aget(project_id)).version)
        hit = self._built.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < BUILT_TTL_SECONDS and not fresh:
            return hit[1]
        fields: set[str] = await self.online.abuilt(project_id)
        self._built[key] = (now, fields)
        return fields

    async def deployed_built(self, project_id: str) -> bool:
        """Is every feature version of the active deployment built (read afresh)? Until then
        reads answer ``building``: ``wait=processed`` waits for this."""
        config = await self.configs.aget(project_id)
        wanted = {p.state_field for p in plan_project(project_id, config.snapshot)}
        return wanted <= await self.built(project_id, fresh=True)

    async def entities(
        self,
        project_id: str,
        entity_key: str,
        ids: Sequence[str],
        names: Sequence[str] | None,
        loc: str = "features",
    ) -> tuple[int, list[Vector]]:
        keys = [(project_id, entity_key, i, None if names is None else tuple(names)) for i in ids]
        try:
            if self._timed:
                async with asyncio.timeout(self.timeout_s):
                    t, vectors = await self._entities(project_id, entity_key, ids, names, loc)
            else:
                t, vectors = await self._entities(project_id, entity_key, ids, names, loc)
        except (*DOWN, TimeoutError) as exc:
            return now_us(), self._recent.stale(keys, _down(exc))
        self._recent.keep(keys, vectors)
        return t, vectors

    async def _entities(
        self,
        project_id: str,
        entity_key: str,
        ids: Sequence[str],
        names: Sequence[str] | None,
        loc: str,
    ) -> tuple[int, list[Vector]]:
        catalog = await self.catalog(project_id)
        selection = catalog.select(entity_key, names, loc)
        built = await self.built(project_id)
        refs = [EntityRef(project_id, entity_key, i) for i in ids]
        blobs = await self.online.aread(refs, selection.fields)
        if self._hits is not None and self._misses is not None:
            found = sum(1 for b in blobs if b)
            if found:
                self._hits.inc(found)
            if found < len(blobs):
                self._misses.inc(len(blobs) - found)
        batch = await self._batch(refs, selection)
        t = now_us()
        return t, [
            vector(ref, b, selection, built, catalog.versions, t, v)
            for ref, b, v in zip(refs, blobs, batch, strict=True)
        ]

    async def _batch(
        self, refs: Sequence[EntityRef], selection: Selection
    ) -> list[dict[str, BatchValue]]:
        if not selection.batch:
            return [{} for _ in refs]
        return await self.online.aread_batch(refs, selection.batch_fields)

    async def cart(self, project_id: str, cart_id: str, names: Sequence[str] | None) -> Vector:
        """The cart's features and, prefixed ``user.``, those of the user owning the cart."""
        keys = [(project_id, "cart", cart_id, None if names is None else tuple(names))]
        try:
            if self._timed:
                async with asyncio.timeout(self.timeout_s):
                    found = await self._cart(project_id, cart_id, names)
            else:
                found = await self._cart(project_id, cart_id, names)
        except (*DOWN, TimeoutError) as exc:
            return self._recent.stale(keys, _down(exc))[0]
        self._recent.keep(keys, [found])
        return found

    async def _cart(self, project_id: str, cart_id: str, names: Sequence[str] | None) -> Vector:
        cart_names = None if names is None else [n for n in names if not n.startswith("user.")]
        user_names = None if names is None else [n[5:] for n in names if n.startswith("user.")]
        catalog = await self.catalog(project_id)
        selection = catalog.select("cart_id", cart_names, "features")
        user_selection = catalog.select("user_id", user_names, "features")
        built = await self.built(project_id)
        ref = EntityRef(project_id, "cart_id", cart_id)
        [blobs] = await self.online.aread([ref], [*selection.fields, OWNER_FIELD])
        [batch] = await self._batch([ref], selection)
        t = now_us()
        out = vector(ref, blobs, selection, built, catalog.versions, t, batch)
        owner = blobs.get(OWNER_FIELD)
        user_id = evaluate(owner_plan(project_id).aggregation, owner, _LIFETIME, t)
        owner_id = next(iter(user_id.values()))[0] if owner is not None else None
        if user_names == [] or (not user_selection.plans and not user_selection.derived):
            return out
        # No owner: the user part is that of an unknown user (empty-window values, no_data).
        uref = EntityRef(project_id, "user_id", "" if owner_id is None else str(owner_id))
        ublobs: dict[str, Blob] = {}
        ubatch: dict[str, BatchValue] = {}
        if owner_id is not None:
            [ublobs] = await self.online.aread([uref], user_selection.fields)
            [ubatch] = await self._batch([uref], user_selection)
        user = vector(uref, ublobs, user_selection, built, catalog.versions, t, ubatch)
        for part in ("values", "status", "sources", "computed_at"):
            if part in user:
                out.setdefault(part, {}).update({f"user.{k}": v for k, v in user[part].items()})
        out["values"]["user.user_id"] = None if owner_id is None else str(owner_id)
        return out


_LIFETIME = owner_plan("_").windows
DOWN = (BackendFailed, BackendUnavailable)
VectorKey = tuple[str, str, str, tuple[str, ...] | None]


def _down(exc: BaseException) -> BackendUnavailable:
    """The 503 to answer when no recent vector stands in: the store, and when to retry."""
    if isinstance(exc, BackendUnavailable):
        return exc
    return BackendUnavailable("online", 1)


class RecentVectors:
    """The vectors this process served last, per (project, entity key, id, names): an LRU
    map of at most ``size`` entries (0: none kept, an outage is always a 503)."""

    def __init__(self, size: int) -> None:
        self.size = size
        # A dict keeps insertion order: re-inserting a key moves it last; the first is oldest.
        self._map: dict[VectorKey, tuple[float, Vector]] = {}

    def keep(self, keys: Sequence[VectorKey], vectors: Sequence[Vector]) -> None:
        if not self.size:
            return
        now = time.time()
        recent = self._map
        for key, found in zip(keys, vectors, strict=True):
            recent.pop(key, None)
            recent[key] = (now, found)
        while len(recent) > self.size:
            del recent[next(iter(recent))]

    def stale(self, keys: Sequence[VectorKey], unavailable: BackendUnavailable) -> list[Vector]:
        """The kept vectors of ``keys``, marked stale; raise ``unavailable`` when any is
        missing (a partial answer would look like a complete one)."""
        now = time.time()
        out: list[Vector] = []
        for key in keys:
            found = self._map.get(key)
            if found is None:
                raise unavailable
            at, kept = found
            out.append({**kept, "stale": True, "stale_age_seconds": round(now - at, 3)})
        return out


def as_datetime(t_us: int) -> datetime:
    return datetime.fromtimestamp(t_us / 1_000_000, UTC)


def iso(t_us: int) -> str:
    return as_datetime(t_us).isoformat().replace("+00:00", "Z")


def seen_until(blob: Blob, t: int) -> int | None:
    """The entity's latest event time ≤ ``t`` that the blob records (None: no event as of t,
    e.g. only events in the future). Exact when the latest event is not after t, or from the
    1 µs tiles (every event of the last minute and every future one has one); otherwise at
    the granularity of the tiles the feature keeps: the latest start of a tile lying wholly
    before t, else the end of the lifetime base."""
    last = blob.get("l")
    if last is not None and int(last) <= t:
        return int(last)
    best: int | None = None
    for i, (level, size) in enumerate(zip(LEVELS, SIZES, strict=True)):
        starts = [int(s) for s in (blob.get("t") or {}).get(level) or {}]
        past = [s for s in starts if s + size <= t + 1]
        if past:
            found = max(past)
            if i == 0:
                return found
            best = found if best is None or found > best else best
    if best is None and blob.get("b") is not None and blob.get("e") is not None:
        best = int(blob["e"]) - 1
    return best


# A vector as plain JSON-ready data, shaped like schemas.EntityFeatures (which documents it):
# the hot path skips pydantic validation and serialisation.
Vector = dict[str, Any]


def vector(
    ref: EntityRef,
    blobs: dict[str, Blob],
    selection: Selection,
    built: set[str],
    versions: dict[str, int],
    t: int,
    batch: dict[str, BatchValue] | None = None,
) -> Vector:
    values: dict[str, Any] = {}
    status: dict[str, Any] = {}
    latest: dict[str, int] = {}
    times: dict[str, int | None] = {}
    for (plan, windows), source in zip(selection.plans, selection.sources, strict=True):
        if plan.state_field not in built:
            for w in windows:
                values[w.value_name] = None
                status[w.value_name] = "building"
            continue
        blob = blobs.get(plan.state_field)
        seen = None if blob is None else seen_until(blob, t)
        for name, (value, event_t) in evaluate(plan.aggregation, blob, windows, t).items():
            values[name] = value
            times[name] = event_t
            if seen is None:
                status[name] = "no_data"
        if seen is not None and seen > latest.get(source, -1):
            latest[source] = seen
    for d in selection.derived:
        value, ok = evaluate_derived(d, values, times, t)
        values[d.name] = value
        if not ok:
            status[d.name] = "error"
    computed = batch_values(selection.batch, batch or {}, t, values, status)
    return {
        "entity_key": ref.entity_key,
        "entity_id": ref.entity_id,
        "as_of": iso(t),
        "values": values,
        "status": status,
        "sources": {k: iso(v) for k, v in latest.items()},
        **({"computed_at": computed} if selection.batch else {}),
        "versions": selection.versions(versions),
    }


def batch_values(
    specs: Sequence[BatchFeatureSpec],
    found: dict[str, BatchValue],
    t: int,
    values: dict[str, Any],
    status: dict[str, Any],
) -> dict[str, str]:
    """Put the batch features' values in ``values`` (status ``building``: never computed;
    ``stale``: computed longer than its TTL before t); returns their computation times."""
    computed: dict[str, str] = {}
    for spec in specs:
        hit = found.get(spec.state_field)
        if hit is None:
            values[spec.name] = None
            status[spec.name] = "building"
            continue
        values[spec.name] = hit.value
        computed[spec.name] = iso(hit.computed_at)
        if t - hit.computed_at > duration_seconds(spec.ttl) * 1_000_000:
            status[spec.name] = "stale"
    return computed


SERVER: Port[FeatureServer] = Port("feature-server", "the online store is not open in this process")
