"""Open the BlobStore named by a URL: ``file:///dir`` or
``s3://bucket/prefix?endpoint=http://host:port&region=us-east-1``. Credentials are not part
of the URL: they come from the settings (or, when absent, from the standard AWS chain)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from dataintel.storage.blob.port import BlobStore


def open_blob(
    url: str, *, access_key: str | None = None, secret_key: str | None = None
) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError(f"a file:// blob URL names an absolute local path: {url!r}")
        from dataintel.storage.blob.local import LocalBlobStore

        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from dataintel.storage.blob.s3 import S3BlobStore, S3Location

        return S3BlobStore(S3Location.parse(url), access_key, secret_key)
    raise ValueError(f"unsupported blob URL scheme {parts.scheme!r} (file, s3)")
