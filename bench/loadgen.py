"""A minimal HTTP/1.1 keep-alive load generator on raw asyncio streams.

httpx costs ~0.5 ms of client CPU per request, too much to hold 1,000 req/s open-loop on a
2-core machine beside the server. This client does only what a benchmark needs: POST a
prepared body, read the status line, headers and Content-Length body.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter


class Conn:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = 0
    ) -> None:
        self.reader, self.writer, self.port = reader, writer, port
        self.last_headers: dict[bytes, bytes] = {}  # of the last response, names lower-case

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**22)
        return cls(reader, writer, port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.request("POST", path, body, headers)

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """One request; a connection the server closed (keep-alive ended, worker recycled)
        is reopened once and the request sent again."""
        try:
            return await self._request(method, path, body, headers)
        except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
            self.close()
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, limit=2**22
            )
            return await self._request(method, path, body, headers)

    async def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        self.last_headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name, value = name.lower(), value.strip()
            self.last_headers[name] = value
            if name == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def closed_loop(
    port: int,
    path: str | list[str],
    bodies: list[bytes],
    headers: dict[str, str],
    clients: int,
    method: str = "POST",
) -> float:
    """Send every body with ``clients`` concurrent connections; return elapsed seconds."""
    queue = list(bodies)

    async def client() -> None:
        conn = await Conn.open(port)
        try:
            while queue:
                i = len(queue) - 1
                target = path[i % len(path)] if isinstance(path, list) else path
                status, resp = await conn.request(method, target, queue.pop(), headers)
                if status >= 300:
                    raise RuntimeError(f"{status}: {resp[:300]!r}")
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start


async def open_loop(
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    rate: float,
    connections: int = 32,
    method: str = "POST",
    paths: list[str] | None = None,
    header: bytes | None = None,
    seen: Counter[bytes] | None = None,
) -> tuple[list[float], float]:
    """Send body i at t0 + i/rate (latency counted from that time, so queueing shows);
    return the latencies in ms and the achieved rate. With ``header`` (lower-case) and
    ``seen``, each response's value of that header is counted in ``seen``."""
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Conn.open(port))
    latencies: list[float] = []
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await pool.get()
        try:
            target = paths[i % len(paths)] if paths else path
            status, resp = await conn.request(method, target, bodies[i], headers)
            if header is not None and seen is not None:
                seen[conn.last_headers.get(header, b"")] += 1
        finally:
            pool.put_nowait(conn)
        if status >= 300:
            raise RuntimeError(f"{status}: {resp[:300]!r}")
        latencies.append((time.perf_counter() - scheduled) * 1000)

    await asyncio.gather(*(one(i) for i in range(len(bodies))))
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, len(bodies) / elapsed
