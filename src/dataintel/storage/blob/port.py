"""The BlobStore port: named byte objects under one root (a directory, or a bucket and a
prefix), for the data lake and exports.

Keys are relative, ``/``-separated (``events/project_id=p/hour=2026-12-07T08/x.parquet``).
A ``put`` is atomic for readers that go through ``get``/``list``: they see the whole object
or none of it (a local file is written under a hidden temporary name and renamed; an S3 PUT
only becomes visible once complete). Overwriting a key replaces it atomically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from dataintel.storage.errors import StorageError


class BlobNotFound(StorageError):
    """No object under that key."""


class InvalidKey(StorageError):
    """A key that is empty, absolute, or walks out of the root (``..``)."""


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidKey(f"invalid blob key {key!r}")
    if any(p.startswith(".") for p in parts):
        raise InvalidKey(f"blob key {key!r} has a hidden segment (reserved for temporary files)")
    return key


class BlobStore(ABC):
    """Blocking calls: run them in a thread from async code."""

    url: str  # where the store lives (no credentials), for logs and docs

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replacing any object there)."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the content of the local file ``path`` under ``key`` atomically."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; BlobNotFound when there is none."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """The keys starting with ``prefix`` (a plain string prefix), sorted."""

    @abstractmethod
    def list_versions(self, prefix: str) -> dict[str, str]:
        """``list`` with, per key, a token that changes whenever the object is replaced
        (its size and modification time): a reader re-reads only what changed."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when there is none."""

    def exists(self, key: str) -> bool:
        try:
            self.get(key)
        except BlobNotFound:
            return False
        return True

    def close(self) -> None:  # noqa: B027 - most adapters hold nothing to release
        """Release what the adapter holds."""
