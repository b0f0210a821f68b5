#!/usr/bin/env python3
"""CI check of the README's first command: `make start` on a fresh clone must serve the demo.

Clones the commit checked out here into a temporary directory (so no virtualenv, data or
../shared beside it), runs `make start PORT=<free port>` there (a fresh .venv from
requirements.lock only), waits for the API key it prints and for the demo events, then checks
with that key that /health/ready and /health/dependencies answer 200, that a demo user who
added to a cart has non-empty feature values with a non-zero number, and (after the simulated
neighbours) that /dashboard/ is served and its overview shows events, carts, revenue and
interventions.
Stops the whole process group at the end.
Exit status 0 when every step passed, 1 with a message naming the failed step otherwise.

Standard library only: it runs before any virtualenv exists. Usage: python3 scripts/check_start.py
(CHECK_START_TIMEOUT seconds for the whole check, default 600; CHECK_START_KEEP=1 keeps the clone).
"""

# Fixed commands (git, make) and URLs of the service this script started on 127.0.0.1:
# ruff: noqa: S603, S607, S310

from __future__ import annotations

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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "demo-shop"
KEY_LINE = re.compile(r"^API key: (\S+)$")
DEMO_LINE = re.compile(r"^Demo data: (\d+) new real shop events ingested")
NEIGHBOURS_LINE = re.compile(r"^Demo neighbours \(simulated\): (\d+) predictions")
DEMO_FAILED = re.compile(r"^Demo data not loaded: (.*)$")
# Variables that would let the check use something other than the fresh clone's own venv.
DROPPED_ENV = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


class CheckFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"[check_start {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clone(target: Path) -> str:
    commit = git("rev-parse", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        log("note: uncommitted changes here are not part of the check (it clones HEAD)")
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "-q", "--detach", commit], check=True)
    return commit


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CheckFailed(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class Service:
    """`make start` in its own process group; its output kept and watched line by line."""

    def __init__(self, clone_dir: Path, port: int) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in DROPPED_ENV and not k.startswith("DATAINTEL_")
        }
        self.proc = subprocess.Popen(
            ["make", "start", f"PORT={port}"],
            cwd=clone_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], what: str, deadline: float) -> re.Match[str]:
        seen = 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    if (found := pattern.search(line)) is not None:
                        return found
                    if (failed := DEMO_FAILED.search(line)) is not None:
                        raise CheckFailed(f"the demo events were not loaded: {failed.group(1)}")
                seen = len(self.lines)
                if self.proc.poll() is not None:
                    raise CheckFailed(f"`make start` exited ({self.proc.returncode}) before {what}")
                if time.monotonic() > deadline:
                    raise CheckFailed(f"timed out waiting for {what}")
                self.changed.wait(timeout=1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        with contextlib.suppress(ProcessLookupError):  # anything the group left behind
            os.killpg(self.proc.pid, signal.SIGKILL)

    def tail(self, count: int = 40) -> str:
        with self.changed:
            return "\n".join(f"  | {line}" for line in self.lines[-count:])


def get(url: str, key: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def get_ok(url: str, key: str) -> str:
    status, body = get(url, key)
    if status != 200:
        raise CheckFailed(f"GET {url} answered {status}: {body}")
    return body


def demo_user(base: str, key: str) -> str:
    """A user of the demo data who added to a cart (read back through the export API)."""
    body = get_ok(f"{base}/v1/export/events?format=ndjson&event=cart_add&limit=1", key)
    rows = [json.loads(line) for line in body.splitlines() if line.strip()]
    if not rows or not rows[0].get("user_id"):
        raise CheckFailed(f"the export of {PROJECT} has no cart_add event with a user_id: {rows}")
    return str(rows[0]["user_id"])


def has_number(values: dict[str, Any]) -> bool:
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and v != 0 for v in values.values()
    )


def check(base: str, key: str) -> None:
    get_ok(f"{base}/health/ready", key)
    log("/health/ready: 200")
    get_ok(f"{base}/health/dependencies", key)  # and every backend answers
    log("/health/dependencies: 200")
    user = demo_user(base, key)
    body = json.loads(get_ok(f"{base}/features/{PROJECT}/users/{user}", key))
    values = body.get("values") if isinstance(body, dict) else None
    if not values or not has_number(values):
        raise CheckFailed(f"demo user {user} has no non-zero feature value: {body}")
    shown = {k: v for k, v in values.items() if has_number({k: v})}
    log(f"features of demo user {user}: {len(values)} values, non-zero: {shown}")
    page = get_ok(f"{base}/dashboard/", key)
    if "dashboard" not in page:
        raise CheckFailed(f"/dashboard/ is not the dashboard: {page[:200]}")
    overview = json.loads(get_ok(f"{base}/v1/analytics/overview?interval=day", key))
    totals = {k: v.get("value") for k, v in overview.get("totals", {}).items()}
    for needed in ("events", "carts_created", "revenue", "interventions_sent"):
        if not totals.get(needed):
            raise CheckFailed(f"the dashboard's overview shows no {needed}: {totals}")
    log(f"/dashboard/: 200; overview of the last 7 days: {totals}")


def run(workdir: Path, timeout_s: float) -> None:
    started = time.monotonic()
    deadline = started + timeout_s
    clone_dir = workdir / "dataintel"
    commit = clone(clone_dir)
    log(f"cloned {commit[:12]} into {clone_dir}")
    port = free_port()
    service = Service(clone_dir, port)
    try:
        log(f"make start PORT={port} (fresh .venv from requirements.lock)")
        key = service.wait_for(KEY_LINE, "the printed API key", deadline).group(1)
        log(f"API key printed after {time.monotonic() - started:.1f} s")
        count = service.wait_for(DEMO_LINE, "the demo events", deadline).group(1)
        log(f"demo events ingested ({count}) after {time.monotonic() - started:.1f} s")
        found = service.wait_for(NEIGHBOURS_LINE, "the simulated neighbours", deadline).group(1)
        log(f"{found} simulated predictions after {time.monotonic() - started:.1f} s")
        check(f"http://127.0.0.1:{port}", key)
    except (CheckFailed, OSError, ValueError) as exc:
        raise CheckFailed(f"{exc}\nlast output of `make start`:\n{service.tail()}") from exc
    finally:
        service.stop()
    log(f"stopped; the start check passed in {time.monotonic() - started:.1f} s")


def main() -> int:
    timeout_s = float(os.environ.get("CHECK_START_TIMEOUT", "600"))
    workdir = Path(tempfile.mkdtemp(prefix="dataintel-start-check-"))
    try:
        run(workdir, timeout_s)
    except (CheckFailed, subprocess.CalledProcessError) as exc:
        print(f"START CHECK FAILED: `make start` on a fresh clone: {exc}", file=sys.stderr)
        return 1
    finally:
        if os.environ.get("CHECK_START_KEEP") == "1":
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
