"""The engines under ClickHouseAnalytics: chDB in this process, or a server through
clickhouse-connect; and how values are written for them (parameter text, literals)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

READ_SETTINGS = {"final": 1}  # every SELECT sees each (project_id, event_id) once

_ESCAPE = str.maketrans({c: "\\" + c for c in "\\'`\t\n"})


def param_text(value: object, top: bool = True) -> str:
    """A Python value as ClickHouse parameter text (the escaped format, as HTTP sends it)."""
    if isinstance(value, str):
        escaped = value.translate(_ESCAPE)
        return escaped if top else f"'{escaped}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if value and all(isinstance(item, str) for item in value):  # hot: event ids
            return "['" + "','".join([item.translate(_ESCAPE) for item in value]) + "']"
        return "[" + ",".join(param_text(item, top=False) for item in value) + "]"
    return str(value)


def literal(value: str | list[str]) -> str:
    """A string or array of strings as a quoted ClickHouse literal."""
    if isinstance(value, list):
        return "[" + ",".join(literal(item) for item in value) + "]"
    return "'" + value.translate(_ESCAPE) + "'"


class ChdbEngine:
    """chDB: the ClickHouse engine in this process, data under ``path``.

    The shared session runs one statement at a time: a query from a request thread while
    the processor's insert streams into it fails ("Cannot run a query while a streaming
    insert is active"), so every use of it holds ``_lock``. Scans open sessions of their own.
    """

    def __init__(self, path: str, database: str = "dataintel") -> None:
        if not database.isidentifier():
            raise ValueError(f"invalid chDB database name {database!r}")
        self._path, self._database = path, database
        self._lock = threading.RLock()
        self._session = self._open(create=True)

    def _open(self, create: bool = False) -> Any:
        from chdb import session as chdb_session

        session_class: Any = chdb_session.Session  # chdb ships no type hints
        try:
            session = session_class(self._path)
        except RuntimeError as exc:  # one chDB data path per process
            raise RuntimeError(f"cannot open chDB at {self._path}: {exc}") from exc
        if create:
            session.query(f"CREATE DATABASE IF NOT EXISTS {self._database}")
        session.query(f"USE {self._database}")
        session.query("SET final = 1")
        return session

    def command(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def table(self, sql: str, params: dict[str, Any], readonly: bool = False) -> pa.Table:
        if readonly:
            sql += " SETTINGS readonly = 1"
        texts = {name: param_text(value) for name, value in params.items()}
        with self._lock:
            result: pa.Table = self._session.query(sql, "ArrowTable", params=texts)
        return result

    def stream(
        self, sql: str, params: dict[str, Any], rows: int, readonly: bool = False
    ) -> Iterator[pa.RecordBatch]:
        # A session holds one streaming query at a time: each scan gets its own (cheap).
        if readonly:  # a caller's query: read-only, and outer joins fill NULLs as in SQL
            sql += " SETTINGS readonly = 1, join_use_nulls = 1"
        texts = {name: param_text(value) for name, value in params.items()}
        session = self._open()
        try:
            result = session.send_query(sql, "Arrow", params=texts)
            try:
                yield from result.record_batch(rows_per_batch=rows)
            finally:
                result.close()
        finally:
            session.close()

    def insert(self, table: str, data: pa.Table, token: str | None) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as writer:
            writer.write_table(data)
        settings = f" SETTINGS insert_deduplication_token = '{token}'" if token else ""
        columns = ", ".join(data.column_names)
        with (
            self._lock,
            self._session.send_insert(
                f"INSERT INTO {table} ({columns}){settings}", "ArrowStream"
            ) as ins,
        ):
            ins.append(sink.getvalue().to_pybytes())
            ins.finish()

    def close(self) -> None:
        with self._lock:
            self._session.close()


class ServerEngine:
    """A ClickHouse server through clickhouse-connect (HTTP)."""

    def __init__(self, **client_args: Any) -> None:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import DatabaseError

        self._client = clickhouse_connect.get_client(**client_args)
        self._errors = DatabaseError

    def command(self, sql: str) -> None:
        self._client.command(sql)

    def table(self, sql: str, params: dict[str, Any], readonly: bool = False) -> pa.Table:
        settings = {**READ_SETTINGS, "readonly": 2} if readonly else READ_SETTINGS
        try:
            result: pa.Table = self._client.query_arrow(
                sql, parameters=params, settings=settings, use_strings=True
            )
        except self._errors as exc:
            raise RuntimeError(str(exc)) from exc
        return result

    def stream(
        self, sql: str, params: dict[str, Any], rows: int, readonly: bool = False
    ) -> Iterator[pa.RecordBatch]:
        del rows  # the server streams its own blocks; rebatch() sizes them
        settings = (
            {**READ_SETTINGS, "readonly": 2, "join_use_nulls": 1} if readonly else READ_SETTINGS
        )
        try:
            with self._client.query_arrow_stream(
                sql, parameters=params, settings=settings, use_strings=True
            ) as stream:
                yield from stream
        except self._errors as exc:
            raise RuntimeError(str(exc)) from exc

    def insert(self, table: str, data: pa.Table, token: str | None) -> None:
        settings = {"insert_deduplication_token": token} if token else {}
        self._client.insert_arrow(table, data, settings=settings)

    def close(self) -> None:
        self._client.close()
