"""`apply`: config as code. Plans, idempotence, errors naming the YAML path."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from dataintel.config.declarative.apply import ApplyResult, apply
from dataintel.config.declarative.spec import demo, parse
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import InvalidInput
from dataintel.storage.metadata.models import Deployment, Feature, Pipeline, Project

SHOP = """
project: {id: shop, name: Shop, description: A shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: product_view
        fields: [{name: product_id, type: string, required: true}, {name: price, type: number}]
      - name: cart_add
        fields: [{name: product_id, type: string}, {name: price, type: number}]
features:
  - {name: cart_adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT}
  - {name: views, pipeline_id: web, source_event: product_view, aggregation: COUNT}
"""

# SHOP with: project and pipeline renamed, product_view and views gone, cart_adds windows.
CHANGED = """
project: {id: shop, name: Shop 2, description: A shop}
pipelines:
  - id: web
    name: Web shop
    events:
      - name: cart_add
        fields: [{name: product_id, type: string}, {name: price, type: number}]
features:
  - {name: cart_adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT, windows: [1h]}
"""


def run(app: Any, text: str, **kwargs: Any) -> ApplyResult:
    with app.state.dataintel.sessions.begin() as session:
        return apply(session, parse(text, "shop.yaml"), **kwargs)


def count(app: Any, model: Any) -> int:
    with app.state.dataintel.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_first_apply_plans_every_create_in_order(app: Any) -> None:
    result = run(app, SHOP)
    assert result.plan_lines() == [
        "+ create project shop",
        "+ create pipeline web",
        "+ create event web/cart_add",
        "+ create event web/product_view",
        "+ create feature cart_adds",
        "+ create feature views",
    ]
    assert "6 to create, 0 to update, 0 to delete." in result.report()
    assert "2 undeployed" not in result.report()
    assert result.deployed_version is None
    with app.state.dataintel.sessions() as session:
        secret = session.get(Pipeline, ("shop", "web")).webhook_secret  # type: ignore[union-attr]
    assert secret.startswith("whsec_")
    assert len(secret) > 40


def test_changes_plan_updates_and_deletes_and_keep_secrets(app: Any) -> None:
    run(app, SHOP)
    with app.state.dataintel.sessions() as session:
        secret = session.get(Pipeline, ("shop", "web")).webhook_secret  # type: ignore[union-attr]
    result = run(app, CHANGED)
    assert result.plan_lines() == [
        "~ update project shop (name)",
        "~ update pipeline web (name)",
        "- delete event web/product_view",
        "~ update feature cart_adds (windows, version)",
        "- delete feature views",
    ]
    with app.state.dataintel.sessions() as session:
        pipeline = session.get(Pipeline, ("shop", "web"))
        feature = session.get(Feature, ("shop", "cart_adds"))
        project = session.get(Project, "shop")
        assert pipeline is not None
        assert feature is not None
        assert project is not None
        assert (pipeline.name, pipeline.webhook_secret) == ("Web shop", secret)
        assert (feature.version, feature.windows) == (2, ["1h"])
        assert project.name == "Shop 2"
    assert count(app, Feature) == 1


def test_apply_is_idempotent(app: Any) -> None:
    first = run(app, SHOP, deploy=True)
    assert first.deployed_version == 1
    again = run(app, SHOP, deploy=True)
    assert again.plan_lines() == []
    assert again.deployed_version is None
    assert "Nothing to deploy: version 1 is active." in again.report()
    assert count(app, Deployment) == 1


def test_deploy_flag_deploys_pending_draft_even_without_plan(app: Any) -> None:
    run(app, SHOP)
    result = run(app, SHOP, deploy=True)
    assert result.plan_lines() == []
    assert result.deployed_version == 1


def test_dry_run_writes_nothing(app: Any) -> None:
    result = run(app, SHOP, dry_run=True, deploy=True)
    assert len(result.plan_lines()) == 6
    assert "Dry run" in result.report()
    assert count(app, Project) == 0


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (
            SHOP.replace(
                "type: number}]\n      - name: cart_add", "type: money}]\n      - name: cart_add"
            ),
            "pipelines[0].events[0].fields[1].type",
        ),
        (SHOP.replace("name: Web\n", "name: Web\n    colour: blue\n"), "pipelines[0].colour"),
        (
            SHOP.replace(
                "aggregation: COUNT}\n  - {name: views",
                "aggregation: COUNT, windows: [3w]}\n  - {name: views",
            ),
            "features[0].windows",
        ),
        (SHOP.replace("{id: shop,", "{id: Shop!,"), "project.id"),
        (
            SHOP
            + "  - {name: views, pipeline_id: web, source_event: cart_add, aggregation: COUNT}\n",
            "features",
        ),
    ],
)
def test_invalid_files_name_the_yaml_path(text: str, path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(text, "shop.yaml")
    assert info.value.detail.startswith(f"shop.yaml: {path}:"), info.value.detail


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(InvalidInput, match=r"shop.yaml: not valid YAML at line 3"):
        parse("project:\n  id: shop\n  name: a: b\n", "shop.yaml")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        parse("- just a list\n", "shop.yaml")


def test_sum_over_a_string_field_is_refused_before_writing(app: Any) -> None:
    bad = SHOP.replace(
        "{name: views, pipeline_id: web, source_event: product_view, aggregation: COUNT}",
        "{name: views, pipeline_id: web, source_event: product_view, aggregation: SUM,"
        " field: product_id}",
    )
    with pytest.raises(InvalidInput) as info:
        run(app, bad)
    assert info.value.errors[0]["loc"] == ["features", 1, "field"]
    assert info.value.detail.startswith(
        "shop.yaml: features[1].field: SUM cannot aggregate 'product_id' of type string"
    )
    assert count(app, Project) == 0


def test_feature_errors_use_the_file_order(app: Any) -> None:
    head, _, _ = SHOP.partition("features:")
    bad = head + (
        "features:\n"
        "  - {name: views, pipeline_id: web, source_event: product_view, aggregation: COUNT}\n"
        "  - {name: cart_adds, pipeline_id: web, source_event: checkout, aggregation: COUNT}\n"
    )
    with pytest.raises(InvalidInput) as info:
        run(app, bad)
    assert info.value.errors[0]["loc"] == ["features", 1, "source_event"]
    assert info.value.detail.startswith("shop.yaml: features[1].source_event: event 'checkout'")


def test_bundled_demo_applies_and_deploys(app: Any) -> None:
    spec = demo()
    assert spec.project.id == "demo-shop"
    assert len(spec.features) >= 8
    web = spec.pipelines[0]
    email = next(f for e in web.events for f in e.fields if f.name == "email")
    assert email.pii
    with app.state.dataintel.sessions.begin() as session:
        result = apply(session, spec, deploy=True)
    assert result.deployed_version == 1
    assert app.state.dataintel.port(CONFIGS).get("demo-shop").snapshot.feature("revenue")
