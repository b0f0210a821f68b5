"""What the fault cluster adds to scripts/cluster.py's topology: the data lake in S3 (moto's
server in a process of its own on 127.0.0.1) and each API replica's ingest spool on a small
filesystem of its own (tmpfs), so that "the analytics engine unreachable" and "the spool's
disk full" are faults one can inject."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.faults.tmpfs import mount_tmpfs, unmount
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from tests.stream.crashkit import free_port

S3_ENV = {"DATAINTEL_S3_ACCESS_KEY_ID": ACCESS_KEY, "DATAINTEL_S3_SECRET_ACCESS_KEY": SECRET_KEY}
SPOOL_DISK = "8m"  # each replica's spool filesystem (the spool's WAL checkpoints at ~4 MB)
SPOOL_BOUND_MB = "64"  # larger than its filesystem: the disk fills first
BALLAST = "ballast.bin"


@contextlib.contextmanager
def s3_server(log_path: Path) -> Iterator[S3Server]:
    """moto's S3 server in its own process (not a thread of the test process, which runs
    the load and the proxies): the worker and the replicas reach it over TCP."""
    port = free_port()
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start (see {log_path})") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def spool_disks(root: Path, replicas: int) -> Iterator[str | None]:
    """A tmpfs of SPOOL_DISK at ``root/api-N`` per replica; yields None, or why there are
    none (no right to mount: the spools are then plain directories)."""
    mounted: list[Path] = []
    why_not = None
    for n in range(replicas):
        where = root / f"api-{n + 1}"
        why_not = mount_tmpfs(where, SPOOL_DISK)
        if why_not is not None:
            break
        mounted.append(where)
    try:
        yield why_not
    finally:
        for where in mounted:
            unmount(where)


def fill(disk: Path, leave: int) -> Path:
    """Fill the filesystem of ``disk`` with a ballast file, leaving ``leave`` bytes free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    ballast = disk / BALLAST
    with ballast.open("wb") as out:
        out.truncate(0)
        chunk = b"\0" * (1 << 16)
        left = max(0, free - leave)
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
    return ballast


def empty(disk: Path) -> None:
    """Remove the ballast: the disk has room again."""
    with contextlib.suppress(FileNotFoundError):
        (disk / BALLAST).unlink()


def free_bytes(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize
