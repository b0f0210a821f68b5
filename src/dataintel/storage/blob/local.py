"""The BlobStore in a local directory: a ``put`` writes a hidden temporary file beside the
target, syncs it and renames it over the key (atomic on POSIX), then syncs the directory, so
neither a reader nor a restart after kill -9 ever sees half an object."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dataintel.storage.blob.port import BlobNotFound, BlobStore, check_key


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda out: out.write(data))

    def put_file(self, key: str, path: Path) -> None:
        def copy(out: BinaryIO) -> None:
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._atomic(key, copy)

    def _atomic(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise BlobNotFound(key) from exc

    def list(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        base = prefix.rpartition("/")[0]
        start = self.root.joinpath(*base.split("/")) if base else self.root
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(".") and key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def list_versions(self, prefix: str) -> dict[str, str]:
        versions = {}
        for key in self.list(prefix):
            with contextlib.suppress(FileNotFoundError):  # replaced or deleted meanwhile
                stat = self._path(key).stat()
                versions[key] = f"{stat.st_size}:{stat.st_mtime_ns}"
        return versions

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
