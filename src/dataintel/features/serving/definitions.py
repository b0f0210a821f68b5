"""GET /v1/features/definitions: what is deployed, how precise each window is, and whether
each version is built."""

from __future__ import annotations

from dataintel.config.deployments.active import ActiveConfig
from dataintel.features.serving.schemas import Definitions, FeatureDefinition, WindowDefinition
from dataintel.model.windows import format_seconds, parse_window


def definitions(project_id: str, config: ActiveConfig, built: set[str]) -> Definitions:
    out: list[FeatureDefinition] = []
    for spec in config.snapshot.features:
        if not spec.enabled:
            continue
        expression = getattr(spec, "expression", None)
        windows = []
        for text in spec.windows if not expression else []:
            w = parse_window(text)
            g = w.granularity_seconds
            windows.append(
                WindowDefinition(
                    window=w.name,
                    value_name=f"{spec.name}_{w.name}",
                    seconds=w.seconds,
                    granularity=None if g is None else format_seconds(g),
                    granularity_seconds=g,
                )
            )
        ready = bool(expression) or f"{spec.name}@{spec.version}" in built
        out.append(
            FeatureDefinition(
                name=spec.name,
                kind="derived" if expression else "aggregation",
                version=spec.version,
                entity_key=spec.entity_key,
                description=spec.description,
                pipeline_id=spec.pipeline_id or None,
                source_event=spec.source_event or None,
                aggregation=None if expression or spec.aggregation is None else spec.aggregation,
                field=spec.field,
                expression=expression,
                windows=windows,
                status="ready" if ready else "building",
            )
        )
    for d in config.snapshot.derived:
        if d.enabled:
            out.append(
                FeatureDefinition(
                    name=d.name,
                    kind="derived",
                    version=d.version,
                    entity_key=d.entity_key,
                    description=d.description,
                    expression=d.expression,
                    status="ready",
                )
            )
    for b in config.snapshot.batch:
        if b.enabled:
            out.append(
                FeatureDefinition(
                    name=b.name,
                    kind="batch",
                    version=b.version,
                    entity_key=b.entity_key,
                    description=b.description,
                    pipeline_id=b.pipeline_id,
                    source_event=b.source_event,
                    aggregation=b.aggregation,
                    field=b.field,
                    expression=b.expression,
                    windows=[_batch_window(b.name, b.window)],
                    schedule=b.schedule,
                    ttl=b.ttl,
                    status="ready",
                )
            )
    return Definitions(project_id=project_id, deployment_version=config.version, features=out)


def _batch_window(name: str, text: str) -> WindowDefinition:
    w = parse_window(text)
    g = w.granularity_seconds
    return WindowDefinition(
        window=w.name,
        value_name=name,
        seconds=w.seconds,
        granularity=None if g is None else format_seconds(g),
        granularity_seconds=g,
    )
