"""The BlobStore in an S3-compatible bucket, through ``pyarrow.fs.S3FileSystem`` (pyarrow is
a runtime dependency already: no boto, no new driver).

A ``put`` hands the whole object to one PutObject (or, above the part size, one multipart
upload that S3 only makes visible once complete), so a reader never sees half an object and
a process killed mid-upload leaves nothing behind. Overwriting a key is atomic, and S3 reads
are strongly consistent after a write (AWS since 2020; MinIO, moto).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pyarrow import fs

from dataintel.storage.blob.port import BlobNotFound, BlobStore, check_key
from dataintel.storage.errors import StorageError

CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b" (no slashes around)
    endpoint: str | None  # http(s)://host:port of an S3-compatible server; None: AWS
    region: str | None

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown s3 URL parameter(s): {', '.join(sorted(unknown))}")
        endpoint = query.get("endpoint")
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError("the s3 URL's endpoint must start with http:// or https://")
        return cls(parts.netloc, parts.path.strip("/"), endpoint, query.get("region"))


class S3BlobStore(BlobStore):
    def __init__(
        self, location: S3Location, access_key: str | None, secret_key: str | None
    ) -> None:
        self.location = location
        root = f"{location.bucket}/{location.prefix}" if location.prefix else location.bucket
        self.root = root
        self.url = f"s3://{root}"
        endpoint = urlsplit(location.endpoint) if location.endpoint else None
        self.fs = fs.S3FileSystem(
            access_key=access_key,
            secret_key=secret_key,
            region=location.region,
            scheme=endpoint.scheme if endpoint else None,
            endpoint_override=endpoint.netloc if endpoint else None,
            request_timeout=30,
            connect_timeout=5,
        )

    def _path(self, key: str) -> str:
        return f"{self.root}/{check_key(key)}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            with self.fs.open_output_stream(path) as out:
                out.write(data)
        except OSError as exc:
            raise StorageError(f"S3 PUT {key!r} failed: {exc}") from exc

    def put_file(self, key: str, path: Path) -> None:
        if path.stat().st_size <= CHUNK:  # one PutObject
            self.put(key, path.read_bytes())
            return
        target = self._path(key)
        try:
            with self.fs.open_output_stream(target) as out, path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
        except OSError as exc:
            raise StorageError(f"S3 upload of {key!r} failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with self.fs.open_input_stream(path) as src:
                data: bytes = src.read()
                return data
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            if "NoSuchKey" in str(exc) or "does not exist" in str(exc):
                raise BlobNotFound(key) from exc
            raise StorageError(f"S3 GET {key!r} failed: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        return sorted(self.list_versions(prefix))

    def list_versions(self, prefix: str) -> dict[str, str]:
        base = prefix.rpartition("/")[0]
        selector = fs.FileSelector(
            f"{self.root}/{base}" if base else self.root, recursive=True, allow_not_found=True
        )
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StorageError(f"S3 LIST {prefix!r} failed: {exc}") from exc
        cut = len(self.root) + 1
        return {
            i.path[cut:]: f"{i.size}:{i.mtime_ns}"
            for i in infos
            if i.type == fs.FileType.File and i.path[cut:].startswith(prefix)
        }

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            self.fs.delete_file(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"S3 DELETE {key!r} failed: {exc}") from exc
