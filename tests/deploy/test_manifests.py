"""The example manifests in deploy/ stay valid: docker-compose against the compose-spec
JSON schema (vendored here), Kubernetes against the OpenAPI-derived JSON schemas that
kubernetes-validate ships (strict: an unknown field fails), and the nginx template with
`nginx -t` when nginx is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"


def _load_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    compose = _load_compose()
    jsonschema.Draft202012Validator(schema).validate(compose)
    api = compose["services"]["api"]
    assert api["environment"]["DATAINTEL_PROCESSOR_ENABLED"] == "false"
    assert api["deploy"]["replicas"] >= 2


def test_compose_schema_rejects_a_wrong_file() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    compose = _load_compose()
    compose["services"]["api"]["replicaz"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(compose)


def _documents() -> list[dict[str, Any]]:
    text = (DEPLOY / "kubernetes" / "dataintel.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_kubernetes_manifests_match_the_schemas() -> None:
    documents = _documents()
    kinds = sorted(doc["kind"] for doc in documents)
    assert {"Deployment", "Service", "Job", "Ingress", "ConfigMap"} <= set(kinds)
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    api = next(
        d
        for d in documents
        if d["metadata"]["name"] == "dataintel-api" and d["kind"] == "Deployment"
    )
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_kubernetes_validation_rejects_an_unknown_field() -> None:
    deployment = next(d for d in _documents() if d["kind"] == "Deployment")
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_nginx_template_is_a_valid_config(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if IN_CI:
            pytest.fail("no nginx: run `make install-dev` (CI=true: the nginx check is mandatory)")
        pytest.skip("no nginx (make install-dev installs it)")
    text = (DEPLOY / "nginx" / "nginx.conf.template").read_text()
    servers = "        server 127.0.0.1:1 max_fails=2 fail_timeout=5s;"
    for name, value in (("listen", "127.0.0.1:1"), ("servers", servers), ("prefix", str(tmp_path))):
        text = text.replace("${" + name + "}", value)
    conf = tmp_path / "nginx.conf"
    conf.write_text(("user root;\n" if os.geteuid() == 0 else "") + text)
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
