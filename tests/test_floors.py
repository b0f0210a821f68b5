"""Imports only point down the floors (DESIGN.md §4, docs/adr/0005-four-floors.md).

    floor 1  model/                  the shared vocabulary: imports nothing of the project
             errors.py, settings.py  leaves: import nothing of the project
             tracing.py              a leaf (OpenTelemetry): every floor above model/ may use it
    floor 2  storage/                ports, adapters, registries: model/ only (never errors.py:
                                     it is the HTTP-status tree; storage raises storage.errors)
    floor 3  planes                  model, storage, errors, settings, api/ helpers, their own
                                     package; another plane only through an exception below
             api/                    cross-cutting HTTP helpers: knows no plane (except the
                                     request guard of auth, below)
    floor 4  main, cli, composition  anything: the composition root

Every module's imports are read with ``ast`` (function-local imports included), so a lazy
import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PLANES = frozenset(
    {
        "auth",
        "config",
        "ingest",
        "stream",
        "export",
        "features",
        "analytics",
        "reports",
        "dashboard",
        "demo",
        "audit",
        "gdpr",
        "retention",
        "quality",
        "reconciliation",
        "scheduler",
    }
)
LEAVES = frozenset({"errors", "settings", "tracing"})
TOP = frozenset({"main", "cli", "composition"})

# (importing module prefix, imported module — or a plane, ending with a dot) -> why this edge
# between planes is allowed.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("dataintel.quality.validate", "dataintel.ingest.validation"): "a sample is validated by "
    "ingest's own compiled validator, so validate answers what ingest would do",
    ("dataintel.quality.endpoints", "dataintel.ingest.validation"): "the sample validator "
    "takes ingest's lateness and skew limits (Limits)",
    ("dataintel.quality.", "dataintel.scheduler.port"): "run now: the quality.rules job is "
    "triggered through the scheduler's JOBS port",
    ("dataintel.", "dataintel.auth.permissions"): "every endpoint names the permission it needs",
    ("dataintel.", "dataintel.auth.principal"): "every scope check reads the caller",
    ("dataintel.api.deps", "dataintel.auth.authenticate"): "api/deps resolves the caller of "
    "every request: the one request guard",
    ("dataintel.ingest.deps", "dataintel.auth.authenticate"): "ingest authenticates write "
    "keys and webhooks itself (Segment Basic auth, signed webhooks)",
    ("dataintel.", "dataintel.scheduler.port"): "planes queue manual runs of their scheduled "
    "jobs through the scheduler's port (model/jobs.py is the vocabulary)",
    ("dataintel.", "dataintel.config.deployments.active"): "planes read the deployed config "
    "(ActiveConfig, its cache and its port token): the config plane's published read side",
    ("dataintel.ingest.", "dataintel.config.pipelines.webhooks"): "ingest verifies the webhook "
    "signatures whose secrets the pipelines API issues: one scheme, one module",
    ("dataintel.ingest.", "dataintel.config.pipelines.repository"): "webhook secrets are read "
    "where the pipelines API stores them",
    ("dataintel.features.serving.derived", "dataintel.config.derived.validation"): "serving "
    "compiles derived expressions with the same checks the config API applied",
    ("dataintel.features.offline.historical_input", "dataintel.ingest.envelope"): "uploaded "
    "label rows parse timestamps and entity ids by the ingest envelope's rules",
    ("dataintel.features.offline.historical", "dataintel.export.formats"): "training sets "
    "are written in the export formats (NDJSON, CSV, Parquet)",
    ("dataintel.reports.analysis_kinds", "dataintel.analytics."): "a report of an analysis "
    "is that analysis's answer (same service, same parameter checks), as a file",
    ("dataintel.features.offline.export_endpoints", "dataintel.export.audited"): "the "
    "features export records itself in the audit trail as every export does",
    ("dataintel.reports.custom", "dataintel.export."): "a custom export larger than a "
    "response runs as a report job (the route and the kind live with the reports)",
    ("dataintel.reports.event_kinds", "dataintel.export.service"): "the report kind `events` "
    "is the event export query, as one file",
    ("dataintel.stream.", "dataintel.features.online.engine"): "the stream processor drives "
    "the online feature engine after each micro-batch",
    ("dataintel.ingest.waiting", "dataintel.stream.progress"): "wait=processed blocks on the "
    "processor's progress",
    ("dataintel.gdpr.", "dataintel.features."): "erasure deletes the subject's online "
    "entities and recomputes the others beside the processor (Recompute, plan_project), and "
    "the subject export reads the feature server",
    ("dataintel.gdpr.erasure", "dataintel.export.datalake."): "erasure rewrites the data "
    "lake's files without the subject, through the lake's own erase",
    ("dataintel.retention.stores", "dataintel.export.datalake.expire"): "retention drops and "
    "rewrites the data lake's expired files through the lake's own expiry",
    ("dataintel.reconciliation.", "dataintel.features.online."): "reconciliation finds the "
    "entities of the deployed feature plans and recomputes lost ones beside the processor",
    ("dataintel.gdpr.endpoints", "dataintel.ingest.resources"): "a forget request makes this "
    "process's ingest reload the suppression list at once",
    ("dataintel.quality.", "dataintel.features."): "the consistency monitor compares the "
    "feature server's values with the offline recomputation (FeatureServer, compute_offline)",
    ("dataintel.quality.alerts_notify", "dataintel.config.pipelines.webhooks"): "alert "
    "notifications are signed with the ingest webhooks' scheme: one scheme, one module",
    ("dataintel.storage.metadata.migrations.env", "dataintel.settings"): "run by the alembic "
    "CLI, outside any composition root, it reads the metadata URL from the settings",
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    """The project modules a file imports: ``from dataintel.x import y`` is x.y when y is a
    module, else x."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if _is_module(sub) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "dataintel" or m.startswith("dataintel.")}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _matches(imported: str, what: str) -> bool:
    """An exception names one module, or a whole plane when it ends with a dot."""
    return imported == what or (what.endswith(".") and imported.startswith(what))


def _allowed(importer: str, imported: str) -> bool:
    src, dst = _part(importer), _part(imported)
    if dst in ("", src) and imported != "dataintel":
        return src not in ("model", "storage") or dst == src
    if src in TOP:
        return True
    if src == "model" or src in LEAVES:
        return False
    if any(
        importer.startswith(who)
        and _matches(imported, what)
        and (src != "storage" or "storage" in who)
        for who, what in EXCEPTIONS
    ):
        return True
    if dst in ("model", "tracing"):  # tracing: a leaf every floor above model/ may use
        return True
    if src == "storage":
        return False
    if dst in TOP:
        return False
    if dst in ("storage", "errors", "settings"):
        return True
    return dst == "api" and src in PLANES


def _edges() -> list[tuple[str, str]]:
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        importer = _module(path)
        for name in sorted(_imports(path)):
            imported = name
            if imported != importer:
                edges.append((importer, imported))
    return sorted(set(edges))


def test_no_import_runs_up_the_floors() -> None:
    bad = [f"{a} -> {b}" for a, b in _edges() if not _allowed(a, b)]
    assert not bad, "imports that run up the floors or across planes:\n" + "\n".join(bad)


def test_every_declared_exception_is_still_needed() -> None:
    edges = _edges()
    unused = [
        f"{who} -> {what}"
        for who, what in EXCEPTIONS
        if not any(
            a.startswith(who) and _matches(b, what) and _part(a) != _part(b) for a, b in edges
        )
    ]
    assert not unused, "exceptions no import uses any more (delete them):\n" + "\n".join(unused)


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("dataintel.model.tiles", "dataintel.config.features.schemas", False),
        ("dataintel.storage.online.sqlite", "dataintel.features.online.plans", False),
        ("dataintel.storage.analytics.duckdb", "dataintel.errors", False),
        ("dataintel.storage.online.port", "dataintel.auth.permissions", False),
        ("dataintel.model.snapshot", "dataintel.settings", False),
        ("dataintel.api.state", "dataintel.features.serving.service", False),
        ("dataintel.features.online.engine", "dataintel.composition", False),
        ("dataintel.ingest.service", "dataintel.features.online.sink", False),
        ("dataintel.features.serving.service", "dataintel.features.online.plans", True),
        ("dataintel.storage.online.sqlite", "dataintel.model.tiles", True),
        ("dataintel.composition", "dataintel.stream.lifecycle", True),
    ],
)
def test_the_rule_itself(importer: str, imported: str, allowed: bool) -> None:
    assert _allowed(importer, imported) is allowed
