"""Circuit breakers around every call to a backend (purgatory, docs/operations.md).

One breaker per dependency — ``metadata`` (PostgreSQL / SQLite), ``eventlog`` (the broker),
``online`` (Redis / SQLite), ``analytics`` (ClickHouse / DuckDB). A call that fails with an
*outage* (connection refused or reset, a timeout, an engine that is not there) counts; any
other error (a bad query, a conflict) is the caller's and does not. After
``threshold`` outages in a row the breaker opens: calls fail at once with
``BackendUnavailable`` (503 + Retry-After, naming the dependency) instead of waiting on a dead
backend; after ``ttl`` seconds it lets calls through again (half-open) and closes at the first
success, or opens again at the first outage.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from purgatory import SyncCircuitBreakerFactory
from purgatory.domain.model import ClosedState, OpenedState

from dataintel.storage.errors import StorageError

DEPENDENCIES = ("metadata", "eventlog", "online", "analytics")
STATE_VALUES = {"closed": 0, "half-opened": 1, "opened": 2}
UNGUARDED = frozenset({"start", "close", "stop"})  # lifecycle: always runs (shutdown too)
T = TypeVar("T")


class BackendUnavailable(StorageError):
    """A dependency's breaker is open: the call was not made."""

    def __init__(self, dependency: str, retry_after: int) -> None:
        super().__init__(
            f"the {dependency} backend is unavailable (circuit open after repeated failures); "
            f"retry in {retry_after} s"
        )
        self.dependency = dependency
        self.retry_after = retry_after


class BackendFailed(StorageError):
    """A call to a dependency failed with an outage (counted by its breaker)."""

    def __init__(self, dependency: str, cause: BaseException) -> None:
        super().__init__(f"the {dependency} backend failed: {type(cause).__name__}: {cause}")
        self.dependency = dependency


def _outage_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the backend is not answering" (drivers imported if present)."""
    found: list[type[BaseException]] = [OSError, TimeoutError, ConnectionError]
    candidates = {
        "redis.exceptions": ("ConnectionError", "TimeoutError", "BusyLoadingError"),
        "sqlalchemy.exc": ("OperationalError", "InterfaceError", "DisconnectionError"),
        "aiokafka.errors": ("KafkaConnectionError", "KafkaTimeoutError", "NoBrokersAvailable"),
        "clickhouse_connect.driver.exceptions": ("OperationalError",),
        "duckdb": ("IOException", "ConnectionException"),
    }
    for module, names in candidates.items():
        try:
            loaded = __import__(module, fromlist=list(names))
        except ImportError:
            continue
        found += [getattr(loaded, name) for name in names if hasattr(loaded, name)]
    return tuple(found)


class Breakers:
    """The process's breakers; ``on_change(dependency, state)`` hears every state change."""

    def __init__(
        self,
        threshold: int = 5,
        ttl_seconds: float = 30.0,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        outages = self._outages = _outage_types()
        self.ttl = ttl_seconds
        self._factory = SyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=ttl_seconds,
            exclude=[(BaseException, lambda exc: not isinstance(exc, outages))],
        )
        self._on_change = on_change
        if on_change is not None:
            self._factory.add_listener(self._hook)
        self._breakers = {name: self._factory.get_breaker(name) for name in DEPENDENCIES}

    def _hook(self, name: str, kind: str, event: Any) -> None:
        if kind == "state_changed" and self._on_change is not None:
            self._on_change(name, str(event.state))

    def state(self, dependency: str) -> str:
        """``closed``, ``half-opened`` or ``opened``."""
        return str(self._breakers[dependency].context.state)

    def states(self) -> dict[str, str]:
        return {name: self.state(name) for name in DEPENDENCIES}

    @contextmanager
    def guard(self, dependency: str) -> Iterator[None]:
        """Around one call to ``dependency``."""
        breaker = self._breakers[dependency]
        try:
            breaker.__enter__()
        except OpenedState as opened:
            left = opened.opened_at + self.ttl - _now()
            raise BackendUnavailable(dependency, max(1, round(left))) from None
        try:
            yield
        except BaseException as exc:  # noqa: BLE001 - counted, then raised again
            self.failed(dependency, exc)
        breaker.__exit__(None, None, None)

    def quiet(self, dependency: str) -> bool:
        """Closed with no failure counted: entering and a success change nothing, so a call
        may skip the breaker's bookkeeping (the hot path) and report only a failure."""
        state = self._breakers[dependency].context._state  # a read-only peek
        return type(state) is ClosedState and state.failure_count == 0

    def failed(self, dependency: str, exc: BaseException) -> NoReturn:
        """Count ``exc`` (after the call was entered) and raise what the caller sees."""
        self._breakers[dependency].__exit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, self._outages):
            raise BackendFailed(dependency, exc) from exc
        raise exc

    def guarded(self, port: T, dependency: str) -> T:
        """``port`` with every public method call guarded by the dependency's breaker."""
        return _GuardedProxy(port, self, dependency)  # type: ignore[return-value]

    def instrument_engine(self, engine: Any) -> None:
        """Guard every statement of a SQLAlchemy engine (the metadata store)."""
        from sqlalchemy import event

        breaker = self._breakers["metadata"]

        @event.listens_for(engine, "before_cursor_execute")
        def _enter(conn: Any, *_: Any) -> None:
            try:
                breaker.__enter__()
            except OpenedState as opened:
                left = opened.opened_at + self.ttl - _now()
                raise BackendUnavailable("metadata", max(1, round(left))) from None
            conn.info["dataintel_breaker"] = True

        @event.listens_for(engine, "after_cursor_execute")
        def _ok(conn: Any, *_: Any) -> None:
            if conn.info.pop("dataintel_breaker", False):
                breaker.__exit__(None, None, None)

        @event.listens_for(engine, "handle_error")
        def _failed(context: Any) -> None:
            conn = context.connection
            if conn is None or conn.info.pop("dataintel_breaker", False):
                exc = context.original_exception
                breaker.__exit__(type(exc), exc, exc.__traceback__)


def _now() -> float:
    import time

    return time.time()


class _GuardedProxy:
    def __init__(self, port: Any, breakers: Breakers, dependency: str) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_breakers", breakers)
        object.__setattr__(self, "_dependency", dependency)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._port, name)
        if name.startswith("_") or name in UNGUARDED or not callable(value):
            return value
        found = _guard(value, self._breakers, self._dependency)
        # Kept on the proxy itself: later lookups find it without calling __getattr__.
        object.__setattr__(self, name, found)
        return found

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._port, name, value)

    def __repr__(self) -> str:
        return f"guarded({self._port!r})"


def _guard(method: Any, breakers: Breakers, dependency: str) -> Any:
    quiet, failed = breakers.quiet, breakers.failed
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            if quiet(dependency):
                try:
                    return await method(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - counted, then raised again
                    failed(dependency, exc)
            with breakers.guard(dependency):
                return await method(*args, **kwargs)

        return run_async

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        if quiet(dependency):
            try:
                return method(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - counted, then raised again
                failed(dependency, exc)
        with breakers.guard(dependency):
            return method(*args, **kwargs)

    return run
