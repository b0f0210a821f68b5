"""Engine and session factory for the MetadataStore, chosen by URL only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_DRIVER_EXTRAS = {"postgresql": "psycopg[binary]"}


def make_engine(url: str) -> Engine:
    """An engine for ``url``: sqlite:///path (embedded) or postgresql+psycopg://... ."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                f"the PostgreSQL driver is missing: pip install '{_DRIVER_EXTRAS[backend]}'"
            ) from exc
    raise ValueError(f"unsupported metadata_url scheme {parsed.drivername!r} (sqlite, postgresql)")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten with zeros, so an erased subject leaves no bytes behind
    # in free pages (GDPR, docs/compliance.md).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def scrub(engine: Engine, tables: list[str]) -> None:
    """Leave no bytes of deleted rows behind in what the service owns (GDPR): SQLite is
    rebuilt (VACUUM; ``secure_delete`` alone misses copies in pages' unallocated space) and
    its write-ahead log emptied; PostgreSQL vacuums ``tables`` so the dead tuples' space is
    reclaimed."""
    if engine.dialect.name == "sqlite":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            if not table.isidentifier():
                raise ValueError(f"not a table name: {table!r}")
            conn.exec_driver_sql(f"VACUUM {table}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
