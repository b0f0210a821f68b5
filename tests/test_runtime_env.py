"""Every module of the package imports on the runtime lock alone (no dev packages).

CI installs requirements-dev.lock, whose tools pull in packages that the service itself never
pins (numpy came in that way, and `make start` crashed on a fresh clone while CI was green).
These tests build a virtualenv from requirements.lock only plus ``pip install --no-deps -e .``,
cached in ``.venv-runtime/`` (git-ignored) and rebuilt when requirements.lock changes, and
import every module of ``dataintel`` in it. Optional engine drivers (the ``kafka`` and
``clickhouse`` extras) are absent there, so their adapters must import them lazily.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
VENV = ROOT / ".venv-runtime"
STAMP = VENV / "requirements.lock.sha256"
# Not importable as a library module: Alembic executes it inside a migration context.
ALEMBIC_SCRIPTS = {"dataintel.storage.metadata.migrations.env"}
DEV_ONLY = ["pytest", "hypothesis", "aiokafka", "chdb", "clickhouse_connect", "pandas"]

IMPORT_ALL = r"""
import ast, importlib, importlib.util, json, pkgutil, sys, traceback
import dataintel

scripts, dev_only = set(sys.argv[1].split(",")), sys.argv[2].split(",")
failures, imported = [], []

def failed(name, exc):
    failures.append({"module": name, "error": f"{type(exc).__name__}: {exc}",
                     "trace": traceback.format_exc(limit=-3)})

def check_script(name):
    # Import what the script imports (it cannot run outside its host).
    with open(importlib.util.find_spec(name).origin) as script:
        tree = ast.parse(script.read())
    for node in tree.body:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module]
        else:
            continue
        for target in targets:
            importlib.import_module(target)

def on_error(name):
    failed(name, sys.exc_info()[1])

for info in pkgutil.walk_packages(dataintel.__path__, "dataintel.", onerror=on_error):
    try:
        check_script(info.name) if info.name in scripts else importlib.import_module(info.name)
        imported.append(info.name)
    except BaseException as exc:
        failed(info.name, exc)
present = [m for m in dev_only if importlib.util.find_spec(m) is not None]
print(json.dumps({"imported": imported, "failures": failures, "dev_only_present": present,
                  "package_file": dataintel.__file__}))
"""


def _pin(line: str) -> tuple[str, str] | None:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==([^\s;]+)\s*", line)
    if match is None:
        return None
    return re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2)


def _lock_pins() -> dict[str, str]:
    pins = [_pin(line) for line in LOCK.read_text().splitlines() if line.strip()]
    assert None not in pins, "requirements.lock holds a line that is not name==version"
    return dict(p for p in pins if p is not None)


def _stamp() -> str:
    digest = hashlib.sha256(LOCK.read_bytes())
    digest.update(f"{sys.version_info[:2]} {ROOT}".encode())
    return digest.hexdigest()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def _run(*args: str | Path) -> None:
    done = subprocess.run(
        [str(a) for a in args], cwd=ROOT, env=_clean_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    """The cached runtime-only virtualenv's python (built under a lock: xdist workers)."""
    python = VENV / "bin" / "python"
    with open(ROOT / ".venv-runtime.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if STAMP.is_file() and STAMP.read_text() == _stamp() and python.exists():
            return python
        _run(sys.executable, "-m", "venv", "--clear", VENV)
        _run(python, "-m", "pip", "install", "-q", "-r", LOCK)
        _run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", ROOT)
        STAMP.write_text(_stamp())
    return python


def test_every_module_imports_with_the_runtime_lock_only_and_it_installs_only_its_pins(
    runtime_python: Path,
) -> None:
    done = subprocess.run(
        [runtime_python, "-I", "-c", IMPORT_ALL, ",".join(ALEMBIC_SCRIPTS), ",".join(DEV_ONLY)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert Path(report["package_file"]).is_relative_to(ROOT / "src"), report["package_file"]
    assert report["dev_only_present"] == [], "the runtime venv is not runtime-only"
    broken = "\n".join(f"{f['module']}: {f['error']}\n{f['trace']}" for f in report["failures"])
    assert not report["failures"], f"modules that do not import on requirements.lock:\n{broken}"
    assert len(report["imported"]) > 100, report["imported"]  # the walk really walked
    # In the same test as the import walk (one virtualenv, one xdist worker: the build holds a
    # lock that a second worker would only wait on): the lock is closed, installing it pulls
    # in nothing it does not pin.
    listed = subprocess.run(
        [runtime_python, "-m", "pip", "list", "--format=json", "--exclude-editable"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {
        re.sub(r"[-_.]+", "-", d["name"]).lower(): d["version"] for d in json.loads(listed.stdout)
    }
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)
    assert installed == _lock_pins()


def test_runtime_lock_pins_every_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [_pin(spec) for spec in project["dependencies"]]
    assert None not in declared, "pyproject.toml dependencies must be pinned with =="
    pins = _lock_pins()
    assert {name: pins.get(name) for name, _ in filter(None, declared)} == dict(
        filter(None, declared)
    )
