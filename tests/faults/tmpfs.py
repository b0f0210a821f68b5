"""A small filesystem made for a test (tmpfs; mounting needs root, as on the dev and CI
machines): where a disk fills up. Without the right to mount the test skips, or fails in CI."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's notation: ``1m``, ``256k``) mounted on ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        message = f"cannot mount a small filesystem: {made.stderr.decode()[:200]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
