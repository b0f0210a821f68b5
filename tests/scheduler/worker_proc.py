"""A worker process for tests/scheduler/test_kill9.py: a real Scheduler on the given
PostgreSQL metadata store running one job, ``test.count`` (every second), that records
each execution (slot, pid) in ``sched_exec`` and takes 0.6 s. Stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from dataintel.model.jobs import Job, JobOutcome, JobRun
from dataintel.scheduler.service import Scheduler
from dataintel.settings import Settings
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker


async def main(url: str) -> None:
    settings = Settings(
        metadata_url=url,
        data_dir=Path("/nonexistent"),
        scheduler_poll_seconds=0.1,
        scheduler_lease_seconds=2.0,
    )
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)

    async def count(run: JobRun) -> JobOutcome:
        def record() -> None:
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO sched_exec (slot, pid) VALUES (:slot, :pid)"),
                    {"slot": run.slot.isoformat(), "pid": os.getpid()},
                )

        await asyncio.to_thread(record)
        await asyncio.sleep(0.6)
        return {"pid": os.getpid()}

    job = Job("test.count", "counts", timedelta(seconds=1), count)
    scheduler = Scheduler(settings, sessions, jobs=[job])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    scheduler.start()
    await stop.wait()
    await scheduler.stop()
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
