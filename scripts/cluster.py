"""`make cluster`: the scale-out topology on this machine, for development and demos.

    nginx (load balancer, config from deploy/nginx/nginx.conf.template)
      -> N API replicas  (`dataintel serve`, DATAINTEL_PROCESSOR_ENABLED=false)
    M workers          (`dataintel worker`: stream processor, reports, scheduled jobs)
    shared:  PostgreSQL (metadata; a fresh database per run, dropped at the end)
             Redis      (online store, analytics cache, rate limits; one Redis db)
             a Kafka-protocol broker (event log; tests/storage/kafka_broker.py, Tansu)
             the analytics store (DATAINTEL_CLUSTER_ANALYTICS_URL; default chDB in the worker)

A dev/ops tool, not product code: every process it starts is a stock binary or a `dataintel`
command with environment variables, as docs/operations.md describes for production. It
prints the URL and an API key, then waits; Ctrl-C (or SIGTERM) stops everything it started.

    python scripts/cluster.py [--api 2] [--workers 1] [--port 8080] [--no-demo]

PostgreSQL and Redis are the machine's (DATAINTEL_CLUSTER_POSTGRES, default
postgresql://postgres@127.0.0.1:5432/test; DATAINTEL_CLUSTER_REDIS, default
redis://127.0.0.1:6379/13). Standard library plus the dev requirements (psycopg).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"
PYTHON = sys.executable
DATAINTEL = [PYTHON, "-m", "dataintel.cli"]
KEY_LINE = re.compile(r"^\s+(\S{20,})$")
BROKER_READY = re.compile(r"Kafka broker ready: bootstrap (\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


def render_nginx(listen: str, upstreams: list[str], prefix: Path) -> str:
    """deploy/nginx/nginx.conf.template with its three placeholders filled (nginx's own
    $variables are left alone)."""
    servers = "\n".join(
        f"        server {address} max_fails=2 fail_timeout=5s;" for address in upstreams
    )
    text = TEMPLATE.read_text()
    if os.geteuid() == 0:
        # nginx started by root runs its workers as `nobody`, who may not write the temp
        # files under a private workdir. Local runs only; in production nginx has its own.
        text = "user root;\n" + text
    for name, value in (("listen", listen), ("servers", servers), ("prefix", str(prefix))):
        text = text.replace("${" + name + "}", value)
    return text


def http_get(url: str, key: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own loopback URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(
    what: str, check: Any, timeout: float, proc: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            if check():
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill9(self) -> None:
        """SIGKILL, no shutdown: a crashed replica."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@dataclass
class Cluster:
    workdir: Path
    api_replicas: int = 2
    workers: int = 1
    port: int = 0
    postgres: str = os.environ.get(
        "DATAINTEL_CLUSTER_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
    )
    redis: str = os.environ.get("DATAINTEL_CLUSTER_REDIS", "redis://127.0.0.1:6379/13")
    analytics_url: str | None = os.environ.get("DATAINTEL_CLUSTER_ANALYTICS_URL")
    extra_env: dict[str, str] = field(default_factory=dict)  # DATAINTEL_* for every process
    api_env: dict[str, str] = field(default_factory=dict)  # DATAINTEL_* for the API replicas
    datalake_url: str | None = None  # default: a local directory in the workdir
    spool_dir: Path | None = None  # replica N's spool: <spool_dir>/api-N/spool.db
    processes: list[Process] = field(default_factory=list)
    database: str = ""
    key: str = ""
    url: str = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        broker = self._broker()
        self._create_database()
        self._flush_redis()
        env = self.environment(broker)
        self._run([*DATAINTEL, "migrate"], env)
        demo = self._run([*DATAINTEL, "demo"], env)
        keys = [m.group(1) for line in demo.splitlines() if (m := KEY_LINE.match(line))]
        if not keys:
            raise RuntimeError(f"`dataintel demo` printed no key:\n{demo}")
        self.key = keys[-1]
        for n in range(self.workers):
            self._spawn(f"worker-{n + 1}", [*DATAINTEL, "worker"], env)
        api_env = {
            **env,
            "DATAINTEL_PROCESSOR_ENABLED": "false",
            # Analytics on every replica: DuckDB in the process over the worker's data lake.
            "DATAINTEL_ANALYTICS_URL": "datalake://?refresh_seconds=1",
            **self.api_env,
        }
        for n in range(self.api_replicas):
            port = free_port()
            spool = self.workdir / f"api-{n + 1}-spool.db"
            if self.spool_dir is not None:
                spool = self.spool_dir / f"api-{n + 1}" / "spool.db"
            self._spawn(
                f"api-{n + 1}",
                [*DATAINTEL, "serve", "--port", str(port)],
                {**api_env, "DATAINTEL_INGEST_SPOOL_PATH": str(spool)},
                port,
            )
        for replica in self.apis():
            wait_until(
                f"{replica.name} ready",
                lambda r=replica: (
                    http_get(f"http://127.0.0.1:{r.port}/health/dependencies")[0] == 200
                ),
                90,
                replica.proc,
            )
        self._nginx()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.database:
            with contextlib.suppress(Exception):
                self._admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = ""

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def apis(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("api-")]

    # -- the pieces -----------------------------------------------------------------------

    def environment(self, broker: str) -> dict[str, str]:
        analytics = self.analytics_url or f"chdb://{self.workdir / 'analytics'}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DATAINTEL_") or k.startswith("DATAINTEL_TEST_")
        }
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
                ),
                "DATAINTEL_DATA_DIR": str(self.workdir / "data"),
                "DATAINTEL_METADATA_URL": self._metadata_url(),
                "DATAINTEL_EVENTLOG_URL": f"kafka://{broker}/dataintel-events?partitions=4",
                "DATAINTEL_ONLINE_URL": f"{self.redis}?prefix=cluster-{self.database}",
                "DATAINTEL_CACHE_URL": self.redis,
                "DATAINTEL_RATE_LIMIT_STORAGE_URL": self.redis,
                "DATAINTEL_ANALYTICS_URL": analytics,
                "DATAINTEL_DATALAKE_URL": self.datalake_url or f"file://{self.workdir / 'lake'}",
                "DATAINTEL_DATALAKE_FLUSH_SECONDS": "1",
                "DATAINTEL_AUTO_MIGRATE": "false",
                "DATAINTEL_TRUSTED_PROXIES": "127.0.0.1",
                "DATAINTEL_LOG_JSON": "true",
                **self.extra_env,
            }
        )
        return env

    def _broker(self) -> str:
        port = free_port()
        process = self._spawn(
            "broker",
            [
                PYTHON,
                "-m",
                "tests.storage.kafka_broker",
                "--port",
                str(port),
                "--workdir",
                str(self.workdir / "broker"),
            ],
            {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
            port,
        )
        wait_until(
            "the Kafka broker",
            lambda: BROKER_READY.search(process.log_path.read_text()) is not None,
            60,
            process.proc,
        )
        return f"127.0.0.1:{port}"

    def pause_broker(self) -> None:
        """The broker goes away for its clients (tests/storage/kafka_broker.py on SIGUSR1:
        its client-facing listener closes, connections drop; the data stays)."""
        os.kill(self.process("broker").proc.pid, signal.SIGUSR1)

    def resume_broker(self) -> None:
        """Back on the same port with the same data (SIGUSR2)."""
        os.kill(self.process("broker").proc.pid, signal.SIGUSR2)

    def _nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError(
                "nginx is not installed: apt-get install -y nginx (make install-dev)"
            )
        self.port = self.port or free_port()
        prefix = self.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        upstreams = [f"127.0.0.1:{replica.port}" for replica in self.apis()]
        conf = prefix / "nginx.conf"
        conf.write_text(render_nginx(f"127.0.0.1:{self.port}", upstreams, prefix))
        process = self._spawn("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], None, self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(
            "nginx",
            lambda: http_get(f"{self.url}/health/dependencies")[0] == 200,
            20,
            process.proc,
        )

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None, port: int | None = None
    ) -> Process:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own argv
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        process = Process(name, proc, log_path, port, argv, env)
        self.processes.append(process)
        return process

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def kill9(self, name: str) -> None:
        """SIGKILL one process (``api-1``, ``worker-1``, ...): a crash, no shutdown."""
        self.process(name).kill9()

    def restart(self, name: str, timeout: float = 90) -> Process:
        """Start a stopped (or killed) process again with the same command, environment and
        port (so nginx finds it again); an API replica is waited for until it is ready."""
        old = self.process(name)
        old.stop()
        with (self.workdir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603 - our own argv
                old.argv,
                cwd=ROOT,
                env=old.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        new = Process(name, proc, old.log_path, old.port, old.argv, old.env)
        self.processes[self.processes.index(old)] = new
        if name.startswith("api-"):
            wait_until(
                f"{name} ready",
                lambda: http_get(f"http://127.0.0.1:{new.port}/health/dependencies")[0] == 200,
                timeout,
                new.proc,
            )
        return new

    def _run(self, argv: list[str], env: dict[str, str]) -> str:
        done = subprocess.run(  # noqa: S603 - our own argv
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv[2:])}` failed: {done.stdout}{done.stderr}")
        return done.stdout

    def _metadata_url(self) -> str:
        parts = urlsplit(self.postgres)
        return urlunsplit(("postgresql+psycopg", parts.netloc, f"/{self.database}", "", ""))

    def _create_database(self) -> None:
        self.database = f"dataintel_cluster_{uuid.uuid4().hex[:10]}"
        self._admin_sql(f'CREATE DATABASE "{self.database}"')

    def _flush_redis(self) -> None:
        """Empty this run's Redis db: the broker starts empty, so ingest dedup keys, cached
        answers and online tiles left by an earlier run would be wrong (one cluster per Redis
        db at a time; DATAINTEL_CLUSTER_REDIS picks another)."""
        import redis

        client = redis.Redis.from_url(self.redis)
        try:
            client.flushdb()
        finally:
            client.close()

    def _admin_sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.postgres, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    # -- demo data --------------------------------------------------------------------------

    def load_demo_events(self, limit: int | None = None) -> int:
        """The bundled demo events, ingested through nginx like any client would."""
        sys.path.insert(0, str(ROOT / "src"))
        from dataintel.config.declarative.demo_events import demo_events, send_demo_events

        events = demo_events()
        return send_demo_events(self.url, self.key, events=events[:limit] if limit else events)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the scale-out topology locally.")
    parser.add_argument("--api", type=int, default=2, help="API replicas (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="workers (default 1)")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--workdir", type=Path, help="logs and local state (default: a temp dir)")
    parser.add_argument("--no-demo", action="store_true", help="do not ingest the demo events")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dataintel-cluster-"))
    cluster = Cluster(workdir, args.api, args.workers, args.port)

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        log(f"starting in {workdir} (logs: *.log there)")
        cluster.start()
        for process in cluster.processes:
            where = f" on 127.0.0.1:{process.port}" if process.port else ""
            log(f"{process.name}: pid {process.proc.pid}{where}")
        log(
            f"URL: {cluster.url}  (API docs {cluster.url}/docs, dashboard {cluster.url}/dashboard/)"
        )
        log(f"API key (admin of demo-shop): {cluster.key}")
        if not args.no_demo:
            log(f"demo data: {cluster.load_demo_events()} events ingested through nginx")
        log("running; Ctrl-C stops everything")
        while all(p.proc.poll() is None for p in cluster.processes):
            time.sleep(1)
        dead = [p.name for p in cluster.processes if p.proc.poll() is not None]
        log(f"stopped: {', '.join(dead)} exited (see its log in {workdir})")
    except KeyboardInterrupt:
        log("stopping")
    finally:
        cluster.stop()
        log(json.dumps({"stopped": True, "workdir": str(workdir)}))


if __name__ == "__main__":
    main()
