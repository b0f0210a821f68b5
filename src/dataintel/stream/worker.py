"""`dataintel worker`: the processor as its own process, stopped cleanly by SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from prometheus_client import CollectorRegistry

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.settings import Settings
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
from dataintel.stream.lifecycle import StreamRuntime


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = make_engine(settings.resolved_metadata_url)
    sessions = make_sessionmaker(engine)
    configs = ActiveConfigCache(sessions, settings.config_cache_ttl_seconds)
    runtime = await StreamRuntime.start(
        settings, CollectorRegistry(), run_processor=True, configs=configs, sessions=sessions
    )
    try:
        await stop.wait()
    finally:
        await runtime.stop()
        engine.dispose()
