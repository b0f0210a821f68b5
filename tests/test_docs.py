"""The docs that are derived from code stay true."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from dataintel.auth.permissions import MATRIX, Permission, Role

ROOT = Path(__file__).resolve().parent.parent


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "gen_reference", ROOT / "scripts/gen_reference.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_docs_are_current() -> None:
    for name, text in _generator().build().items():
        committed = (ROOT / "docs" / name).read_text()
        assert committed == text, f"docs/{name} is stale: run `make docs`"


def test_permission_table_in_docs_matches_the_matrix() -> None:
    text = (ROOT / "docs/auth.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| permission |"))
    roles = [c.strip() for c in header.strip("|").split("|")[1:]]
    assert roles == [str(r) for r in Role]
    seen: set[Permission] = set()
    for line in text.splitlines():
        m = re.match(r"^\| `([a-z:]+)` \|(.*)\|$", line)
        if not m:
            continue
        perm = Permission(m.group(1))
        marks = [c.strip() for c in m.group(2).split("|")[: len(roles)]]
        granted = {Role(r) for r, mark in zip(roles, marks, strict=True) if mark == "✓"}
        assert granted == set(MATRIX[perm]), perm
        seen.add(perm)
    assert seen == set(Permission)


def test_readme_quick_start_is_the_two_make_targets_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()]
    assert commands == ["make start", "make test"]
    assert "make test" in (ROOT / ".ci/run").read_text()
