"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document.

schemathesis generates valid and invalid requests for every operation; each response must
be a non-5xx whose status code, content type, headers and body are declared in the schema.
The app runs in-process (ASGI) on SQLite with a global-admin key and a seeded project.

The schema is loaded when the module is imported (one pytest item per operation):
``schemathesis.pytest.from_fixture`` does not work with pytest 9 (it sets a private
``_nodeid`` that pytest 9 no longer has).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import Keys, seed_config

PROJECT = "shop"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    missing_required_header,
    unsupported_method,
]
# Realistic values for path parameters, so operations also reach existing resources.
KNOWN = {"project_id": PROJECT, "pipeline_id": "web", "event_name": "cart_add", "name": "f1"}

_ROOT = Path(tempfile.mkdtemp(prefix="dataintel-fuzz-"))
APP = create_app(
    Settings(
        data_dir=_ROOT,
        metadata_url=f"sqlite:///{_ROOT / 'metadata.db'}",
        log_level="error",
        rate_limit=None,  # the fuzz sends thousands of requests: limits are tested elsewhere
        sensitive_rate_limit=None,
        sensitive_rate_limit_per_ip=None,
        jwt_secret="fuzz-secret-" + "x" * 32,
    )
)
_KEYS = Keys(APP)
_KEYS.project(PROJECT)
seed_config(APP, PROJECT)
ADMIN = _KEYS.headers([Role.ADMIN])

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    APP.state.dataintel.engine.dispose()
    shutil.rmtree(_ROOT, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case: Any) -> None:
    negative_path = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    if case.path_parameters and not negative_path:
        for name, value in KNOWN.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    case.call_and_validate(headers=ADMIN, checks=CHECKS)


def test_booleans_in_request_bodies_are_strict(
    app: Any, client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    seed_config(app, keys.project("p1"))
    resp = client.patch("/api/v1/projects/p1/features/f1", json={"enabled": 0}, headers=admin)
    assert resp.status_code == 422, resp.text
