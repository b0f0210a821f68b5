"""The config-as-code file format of `dataintel apply` (one project per YAML file).

The file reuses the API's request models, so a pipeline or feature in YAML is validated by
exactly the rules of the HTTP API; errors name their place in the file
(``pipelines[0].events[2].fields[1].type: ...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dataintel.config.batch.schemas import BatchFeatureCreate
from dataintel.config.derived.schemas import DerivedCreate
from dataintel.config.features.schemas import FeatureCreate
from dataintel.config.pipelines.schemas import PipelineCreate
from dataintel.config.projects.schemas import ProjectCreate
from dataintel.errors import InvalidInput
from dataintel.model.batch import BatchFeatureSpec
from dataintel.model.monitoring import MonitoringSettings
from dataintel.model.platform import TEMPLATES
from dataintel.model.quality import QualityConfig
from dataintel.model.retention import RetentionPolicy
from dataintel.model.snapshot import (
    AnalyticsSettings,
    ConfigSnapshot,
    DerivedSpec,
    EventSpec,
    FeatureSpec,
    PipelineSpec,
    model_of,
)

DEMO_FILE = "demo-shop.yaml"


def _no_duplicates(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind} {name!r} is declared twice")
        seen.add(name)


class ProjectFile(BaseModel):
    """A whole project: its identity, pipelines (with event schemas), the bundled pipeline
    templates it enables, features, derived features, analytics settings, the retention
    policy and the quality rules (omitted: the defaults)."""

    model_config = ConfigDict(extra="forbid")

    project: ProjectCreate
    templates: list[Literal["platform"]] = Field(
        default_factory=list, description="Bundled pipelines to include (model/platform.py)."
    )
    pipelines: list[PipelineCreate] = Field(default_factory=list, max_length=200)
    features: list[FeatureCreate] = Field(default_factory=list, max_length=2000)
    derived: list[DerivedCreate] = Field(default_factory=list, max_length=500)
    batch: list[BatchFeatureCreate] = Field(default_factory=list, max_length=500)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """The file it came from, for messages."""
        return self._source

    @field_validator("templates")
    @classmethod
    def _unique_templates(cls, v: list[str]) -> list[str]:
        _no_duplicates("template", v)
        return v

    @field_validator("pipelines")
    @classmethod
    def _unique_pipelines(
        cls, v: list[PipelineCreate], info: ValidationInfo
    ) -> list[PipelineCreate]:
        _no_duplicates("pipeline", [p.id for p in v])
        for name in info.data.get("templates", []):
            if TEMPLATES[name].id in {p.id for p in v}:
                raise ValueError(
                    f"pipeline {TEMPLATES[name].id!r} is added by the template {name!r}: "
                    "remove one of them"
                )
        return v

    @field_validator("features")
    @classmethod
    def _unique_features(cls, v: list[FeatureCreate]) -> list[FeatureCreate]:
        _no_duplicates("feature", [f.name for f in v])
        return v

    @field_validator("batch")
    @classmethod
    def _unique_batch(cls, v: list[BatchFeatureCreate]) -> list[BatchFeatureCreate]:
        _no_duplicates("batch feature", [b.name for b in v])
        return v

    def snapshot(self) -> ConfigSnapshot:
        """The desired config, in canonical order (feature versions not yet resolved)."""
        pipelines = [TEMPLATES[name] for name in self.templates] + [
            model_of(
                PipelineSpec,
                p,
                events=[model_of(EventSpec, e) for e in sorted(p.events, key=lambda e: e.name)],
            )
            for p in self.pipelines
        ]
        pipelines.sort(key=lambda p: p.id)
        features = [
            FeatureSpec.model_validate(f.model_dump()) for f in sorted(self.features, key=_name)
        ]
        derived = [
            DerivedSpec.model_validate(d.model_dump())
            for d in sorted(self.derived, key=lambda d: d.name)
        ]
        batch = [
            BatchFeatureSpec.model_validate(b.model_dump())
            for b in sorted(self.batch, key=lambda b: b.name)
        ]
        return ConfigSnapshot(
            pipelines=pipelines,
            features=features,
            derived=derived,
            batch=batch,
            analytics=self.analytics,
            retention=self.retention,
            monitoring=self.monitoring,
            quality=self.quality,
        )


def _name(f: FeatureCreate) -> str:
    return f.name


def yaml_path(loc: Sequence[int | str]) -> str:
    """["pipelines", 0, "events", 1, "name"] -> "pipelines[0].events[1].name"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _validation_error(exc: ValidationError, source: str) -> InvalidInput:
    errors: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, int | str)]
        msg = err["msg"].removeprefix("Value error, ")
        errors.append(
            {"loc": loc, "pointer": "/" + "/".join(map(str, loc)), "msg": msg, "type": err["type"]}
        )
    first = errors[0]
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return InvalidInput(f"{source}: {yaml_path(first['loc'])}: {first['msg']}{more}", errors)


def parse(text: str, source: str = "<config>") -> ProjectFile:
    """Parse and validate a project file; InvalidInput names the YAML path of the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{source}: not valid YAML{where}: {reason}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: the file must be a mapping with project, pipelines, features"
        )
    try:
        spec = ProjectFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, source) from exc
    spec._source = source
    return spec


def load(path: Path) -> ProjectFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the file: {exc}") from exc
    return parse(text, str(path))


def demo() -> ProjectFile:
    """The bundled demo project (an e-commerce storefront)."""
    text = resources.files("dataintel.config.declarative").joinpath(DEMO_FILE).read_text("utf-8")
    return parse(text, DEMO_FILE)
