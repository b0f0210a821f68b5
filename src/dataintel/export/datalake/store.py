"""The data lake's blob store, from the settings: its URL and the S3 credentials (never
from a request)."""

from __future__ import annotations

from dataintel.settings import Settings
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.blob.registry import open_blob


def open_lake(settings: Settings) -> BlobStore | None:
    """The store ``datalake_url`` names; None when the data lake is off."""
    if not settings.datalake_url:
        return None
    secret = settings.s3_secret_access_key
    return open_blob(
        settings.datalake_url,
        access_key=settings.s3_access_key_id,
        secret_key=secret.get_secret_value() if secret is not None else None,
    )
