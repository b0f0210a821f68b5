"""A small filesystem made for a test (tmpfs; mounting needs root, as on the dev and CI
machines): where a disk fills up. Without the right to mount the test skips, or fails in CI."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


def mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` (mount's notation: ``1m``, ``256k``) on ``where``; None, or
    why it could not."""
    where.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        return f"cannot mount a small filesystem: {made.stderr.decode()[:200]}"
    return None


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False)


def need_small_filesystem(why_not: str | None) -> None:
    """Skip the test (fail it in CI) when the small filesystem could not be made."""
    if why_not is None:
        return
    if IN_CI:
        pytest.fail(why_not)
    pytest.skip(why_not)


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``where`` for the block."""
    need_small_filesystem(mount_tmpfs(where, size))
    try:
        yield where
    finally:
        unmount(where)
