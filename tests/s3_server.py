"""A real S3 API on 127.0.0.1 for the session: moto's server (``moto[server]``), and a fresh
bucket per test. Loaded by tests/conftest.py (``pytest_plugins``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pyarrow import fs

from dataintel.storage.blob.s3 import S3BlobStore, S3Location
from tests.stream.crashkit import free_port

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"  # moto accepts any pair; the service must send one


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        host = self.endpoint.removeprefix("http://")
        s3 = fs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region="us-east-1",
            scheme="http",
            endpoint_override=host,
            allow_bucket_creation=True,
        )
        s3.create_dir(name)
        return name

    def url(self, bucket: str, prefix: str = "lake") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"

    def store(self, prefix: str = "lake") -> S3BlobStore:
        location = S3Location.parse(self.url(self.bucket(), prefix))
        return S3BlobStore(location, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
