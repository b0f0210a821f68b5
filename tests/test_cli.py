"""The `dataintel` command, in process (CliRunner) and once as a real server process."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from dataintel.cli import main
from dataintel.main import create_app
from dataintel.settings import Settings

KEY = re.compile(r"\b(di_\S+)")

SHOP = """\
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields: [{name: product_id, type: string}, {name: price, type: number}]
features:
  - {name: cart_value, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price}
"""


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    runner = CliRunner()
    env = {"DATAINTEL_DATA_DIR": str(tmp_path / "data"), "DATAINTEL_METADATA_URL": None}

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env)

    return invoke


def key_of(result: Result) -> str:
    assert result.exit_code == 0, result.output
    match = KEY.search(result.output)
    assert match, result.output
    return match.group(1)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_init_prints_a_working_admin_key_once(cli: Any, tmp_path: Path) -> None:
    assert cli("migrate").exit_code == 0
    key = key_of(cli("init"))
    again = cli("init")
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert "--new" in again.output
    assert "Traceback" not in again.output
    other = key_of(cli("init", "--new"))
    settings = Settings(data_dir=tmp_path / "data", rate_limit=None, log_level="warning")
    with TestClient(create_app(settings)) as client:
        for k in (key, other):
            assert client.get("/api/v1/projects", headers=auth(k)).status_code == 200
        created = client.post("/api/v1/projects", json={"id": "p", "name": "P"}, headers=auth(key))
        assert created.status_code == 201


def test_demo_prints_a_key_and_replaces_the_previous_one(cli: Any, tmp_path: Path) -> None:
    first = cli("demo")
    old = key_of(first)
    assert "Deployed version 1." in first.output
    new = key_of(cli("demo"))
    settings = Settings(data_dir=tmp_path / "data", rate_limit=None, log_level="warning")
    with TestClient(create_app(settings)) as client:
        project = client.get("/api/v1/projects/demo-shop", headers=auth(new))
        assert project.status_code == 200
        assert project.json()["active_version"] == 1
        assert client.get("/api/v1/projects/demo-shop", headers=auth(old)).status_code == 401


def test_apply_dry_run_then_deploy(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    dry = cli("--data-dir", str(tmp_path / "other"), "apply", str(path), "--dry-run", "--deploy")
    assert dry.exit_code == 0, dry.output
    assert "+ create feature cart_value" in dry.output
    assert "nothing was written" in dry.output
    real = cli("apply", str(path), "--deploy")
    assert real.exit_code == 0
    assert "Deployed version 1." in real.output
    # The dry run went to --data-dir: that store has no project, the default one has it.
    for data_dir, expected in ((tmp_path / "other", 0), (tmp_path / "data", 1)):
        settings = Settings(data_dir=data_dir, rate_limit=None, log_level="warning")
        with TestClient(create_app(settings)) as client:
            admin = key_of(cli("--data-dir", str(data_dir), "init", "--new"))
            projects = client.get("/api/v1/projects", headers=auth(admin)).json()
            assert len(projects) == expected
    again = cli("apply", str(path), "--deploy")
    assert "(no changes)" in again.output
    assert "Nothing to deploy" in again.output
    # The CLI's acts are in the audit trail too (the no-op apply is not).
    settings = Settings(data_dir=tmp_path / "data", rate_limit=None, log_level="warning")
    with TestClient(create_app(settings)) as client:
        admin = auth(key_of(cli("init", "--new")))
        shop = client.get("/v1/audit", params={"project_id": "shop"}, headers=admin).json()
        assert [(e["actor"], e["action"]) for e in shop["entries"]] == [("cli", "apply")]
        assert shop["entries"][0]["detail"]["deployed_version"] == 1
        inits = client.get("/v1/audit/global", params={"action": "init"}, headers=admin).json()
        assert len(inits["entries"]) == 2  # the one above, and this test's first
        verified = client.get("/v1/audit/verify", params={"project_id": "shop"}, headers=admin)
        assert verified.json()["valid"] is True


def test_bad_file_is_one_line_error(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.replace("field: price", "field: product_id"))
    result = cli("apply", str(path))
    assert result.exit_code == 1
    assert "SUM cannot aggregate 'product_id'" in result.output
    assert "shop.yaml: features[0].field:" in result.output
    path.write_text(SHOP.replace("type: number", "type: money"))
    result = cli("apply", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1
    assert "pipelines[0].events[0].fields[1].type" in result.output
    assert cli("apply", str(tmp_path / "missing.yaml")).exit_code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_as_a_real_process(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATAINTEL_DATA_DIR": str(tmp_path / "data"),
        "DATAINTEL_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATAINTEL_METADATA_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataintel.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, "".join(lines)
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("server not ready in 30 s:\n" + "".join(lines))
        output = "".join(lines)
        assert f"{base}/docs" in output
        key = re.search(r"API key: (di_\S+)", output)
        assert key, output
        resp = httpx.get(f"{base}/api/v1/projects/demo-shop", headers=auth(key.group(1)))
        assert resp.status_code == 200
        assert resp.json()["active_version"] == 1
        # The demo data: real shop events ingested through the API, visible in the export.
        assert f"Dashboard: {base}/dashboard/" in output
        # The demo data: real shop events ingested through the API, visible in the export,
        # then the simulated neighbours' events on them.
        deadline = time.monotonic() + 240
        while "Demo neighbours" not in "".join(lines) and time.monotonic() < deadline:
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        assert "Demo data: 17434 new real shop events" in "".join(lines), "".join(lines)
        assert re.search(r"Demo neighbours \(simulated\): [1-9]\d* predictions", "".join(lines))
        shop = {"event": ["product_view", "cart_add", "purchase"], "limit": 100_000}
        export = httpx.get(
            f"{base}/v1/export/events", params=shop, headers=auth(key.group(1)), timeout=60
        )
        assert export.status_code == 200
        rows = export.content.splitlines()
        assert len(rows) == 17_434
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
