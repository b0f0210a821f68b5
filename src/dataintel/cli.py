"""The `dataintel` command: migrate, init, apply, demo, serve.

Settings come from the environment (DATAINTEL_*), like the service; --data-dir overrides
DATAINTEL_DATA_DIR. Expected failures print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dataintel.auth import repository as keys
from dataintel.auth.permissions import Role
from dataintel.auth.service import ApiKeyService
from dataintel.config.declarative import spec as declarative
from dataintel.config.declarative.apply import ApplyResult, apply
from dataintel.errors import ServiceError
from dataintel.settings import Settings
from dataintel.storage.metadata import audit_repository as audit
from dataintel.storage.metadata import migrate as migrations
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker

DEMO_KEY_NAME = "demo"
F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """Turn expected failures into `Error: <one line>` and exit status 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(exc.detail) from exc
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            reason = (str(orig) if orig is not None else str(exc)).splitlines()[0]
            raise click.ClickException(f"metadata store: {reason}") from exc

    return wrapper  # type: ignore[return-value]


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_metadata_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """A migrated metadata store and one transaction, committed on success."""
    with _engine(settings) as engine:
        migrations.upgrade(engine)
        with make_sessionmaker(engine).begin() as session:
            yield session


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(ctx.obj or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


@click.group(help="dataintel: behavioural events, real-time features, analytics.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the embedded stores (overrides DATAINTEL_DATA_DIR).",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None) -> None:
    ctx.obj = {"data_dir": data_dir} if data_dir is not None else {}


@main.command(help="Bring the metadata schema up to date.")
@click.pass_context
@_one_line_errors
def migrate(ctx: click.Context) -> None:
    settings = _settings(ctx)
    with _engine(settings) as engine:
        migrations.upgrade(engine)
    url = make_url(settings.resolved_metadata_url).render_as_string(hide_password=True)
    click.echo(f"Metadata schema is up to date ({url}).")


@main.command(help="Create the first global admin API key and print it (once).")
@click.option("--new", "force_new", is_flag=True, help="Mint another one even if one exists.")
@click.pass_context
@_one_line_errors
def init(ctx: click.Context, force_new: bool) -> None:
    with _session(_settings(ctx)) as session:
        if keys.has_global_admin(session) and not force_new:
            raise click.ClickException(
                "a global admin API key already exists; use it, or pass --new to mint another"
            )
        minted = ApiKeyService(session).mint("admin", None, [Role.ADMIN], "cli")
        audit.append(session, audit.GLOBAL_CHAIN, "cli", "init", None, {"key_id": minted.id})
        key = minted.key
    click.echo("Global admin API key (shown once, store it safely):")
    click.echo(f"  {key}")


def _apply(
    ctx: click.Context, spec: declarative.ProjectFile, deploy: bool, dry: bool
) -> ApplyResult:
    with _session(_settings(ctx)) as session:
        result = apply(session, spec, by="cli", deploy=deploy, dry_run=dry)
        if not dry and (result.project_action or result.changes or result.deployed_version):
            detail = {
                "project": result.project_action,
                "changes": len(result.changes),
                "deployed_version": result.deployed_version,
            }
            audit.append(session, result.project_id, "cli", "apply", None, detail)
        return result


@main.command(name="apply", help="Make a project's config equal a YAML file (config as code).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--deploy", is_flag=True, help="Deploy the result when it differs from the active version."
)
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.pass_context
@_one_line_errors
def apply_command(ctx: click.Context, file: Path, deploy: bool, dry_run: bool) -> None:
    result = _apply(ctx, declarative.load(file), deploy, dry_run)
    click.echo(result.report())


def _load_demo(ctx: click.Context) -> tuple[ApplyResult, str]:
    result = _apply(ctx, declarative.demo(), deploy=True, dry=False)
    with _session(_settings(ctx)) as session:
        key = ApiKeyService(session).rotate_named(DEMO_KEY_NAME, result.project_id, [Role.ADMIN])
        audit.append(session, result.project_id, "cli", "rotate_demo_key")
    return result, key


@main.command(help="Load and deploy the bundled demo project and print an API key for it.")
@click.pass_context
@_one_line_errors
def demo(ctx: click.Context) -> None:
    result, key = _load_demo(ctx)
    click.echo(result.report())
    click.echo(f"API key for project {result.project_id} (admin; replaces the previous demo key):")
    click.echo(f"  {key}")


@main.command(help="Run the HTTP service (migrates first unless DATAINTEL_AUTO_MIGRATE=false).")
@click.option("--host", help="Interface to listen on (default DATAINTEL_HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port (default DATAINTEL_PORT or 8000).")
@click.option("--demo", "with_demo", is_flag=True, help="Load the demo project and print a key.")
@click.pass_context
@_one_line_errors
def serve(ctx: click.Context, host: str | None, port: int | None, with_demo: bool) -> None:
    import uvicorn

    from dataintel.main import create_app

    settings = _settings(ctx, host=host, port=port)
    if settings.auto_migrate:  # false with replicas: `dataintel migrate` once per release
        with _engine(settings) as engine:
            migrations.upgrade(engine)
    url = f"http://{settings.host}:{settings.port}"
    key = None
    if with_demo:
        result, key = _load_demo(ctx)
        click.echo(f"Demo project {result.project_id} deployed (version {result.active_version}).")
    click.echo(f"Starting dataintel on {url}")
    click.echo(f"API docs: {url}/docs")
    click.echo(f"Dashboard: {url}/dashboard/ (sign in with an API key)")
    if key is not None:
        click.echo(f"API key: {key}")
        _send_demo_events_when_up(url, key)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None)


def _send_demo_events_when_up(url: str, key: str) -> None:
    """Once the server answers, ingest the bundled demo events through its API, run the
    simulated neighbours (AI engine, intervention engine) on them, then the demo project's
    quality rules (so the dashboard's quality page has results at once)."""
    import threading
    from datetime import UTC, datetime

    from dataintel.config.declarative.demo_events import demo_events, send_demo_events
    from dataintel.demo.http import Api
    from dataintel.demo.neighbours import simulate

    def send() -> None:
        now = datetime.now(UTC)
        events = demo_events(now)
        try:
            accepted = send_demo_events(url, key, events=events)
            click.echo(f"Demo data: {accepted} new real shop events ingested (REES46 slice).")
            done = simulate(Api(url, key), events, "demo-shop", now)
            click.echo(
                f"Demo neighbours (simulated): {done.predictions} predictions, "
                f"{done.interventions} interventions, {done.holdouts} holdouts. "
                f"Dashboard: {url}/dashboard/"
            )
            run = Api(url, key).call("POST", "/v1/jobs/quality.rules/runs")
            click.echo(f"Quality rules run on the demo data: GET /v1/jobs/runs/{run['run_id']}")
        except OSError as exc:  # the server went away: nothing to report to
            click.echo(f"Demo data not loaded: {exc}", err=True)

    threading.Thread(target=send, name="demo-events", daemon=True).start()


@main.command(help="Run the stream processor alone (scale out: one per log partition set).")
@click.pass_context
@_one_line_errors
def worker(ctx: click.Context) -> None:
    """Consume the event log into the analytics store, and generate queued reports, until
    SIGINT/SIGTERM. Run `serve` with DATAINTEL_PROCESSOR_ENABLED=false beside it; several
    workers share Kafka partitions and the report queue."""
    import asyncio

    from dataintel.api.logging import configure
    from dataintel.composition import run_worker

    settings = _settings(ctx)
    configure(settings.log_level, settings.log_json)
    click.echo(f"dataintel worker: {settings.resolved_eventlog_url} -> analytics")
    asyncio.run(run_worker(settings))


if __name__ == "__main__":  # pragma: no cover - `python -m dataintel.cli`
    main()
