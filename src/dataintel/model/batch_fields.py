"""The property types a batch feature reads, from the pipelines of its config."""

from __future__ import annotations

from collections.abc import Sequence

from dataintel.model.fields import FieldType
from dataintel.model.snapshot import PipelineSpec


def declared_types(
    pipelines: Sequence[PipelineSpec], pipeline_id: str | None, source_event: str | None
) -> dict[str, FieldType]:
    """Property name -> type over the events the feature reads (all the project's events
    unless it names a pipeline / event). A property declared with two types is left out
    (it cannot be read one way)."""
    types: dict[str, FieldType] = {}
    clashing: set[str] = set()
    for p in pipelines:
        if pipeline_id is not None and p.id != pipeline_id:
            continue
        for e in p.events:
            if source_event is not None and e.name != source_event:
                continue
            for f in e.fields:
                if types.setdefault(f.name, f.type) is not f.type:
                    clashing.add(f.name)
    return {k: v for k, v in types.items() if k not in clashing}
