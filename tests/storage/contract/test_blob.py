"""The BlobStore contract: one suite, run against a local directory and an S3 bucket (moto's
S3 server on 127.0.0.1: the real S3 API, no mock of the client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dataintel.storage.blob.local import LocalBlobStore
from dataintel.storage.blob.port import BlobNotFound, BlobStore, InvalidKey
from dataintel.storage.blob.registry import open_blob
from dataintel.storage.blob.s3 import S3Location
from tests.s3_server import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        blob: BlobStore = LocalBlobStore(tmp_path / "blobs")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        blob = server.store()
    try:
        yield blob
    finally:
        blob.close()


def test_put_get_overwrite_delete(store: BlobStore) -> None:
    store.put("a/b/c.bin", b"one")
    assert store.get("a/b/c.bin") == b"one"
    store.put("a/b/c.bin", b"two")
    assert store.get("a/b/c.bin") == b"two"
    assert store.exists("a/b/c.bin")
    store.delete("a/b/c.bin")
    store.delete("a/b/c.bin")  # idempotent
    assert not store.exists("a/b/c.bin")
    with pytest.raises(BlobNotFound):
        store.get("a/b/c.bin")


def test_list_by_prefix_is_sorted_and_recursive(store: BlobStore) -> None:
    for key in ("x/2.txt", "x/1.txt", "x/y/3.txt", "xa/4.txt", "z.txt"):
        store.put(key, key.encode())
    assert store.list("x/") == ["x/1.txt", "x/2.txt", "x/y/3.txt"]
    assert store.list("x") == ["x/1.txt", "x/2.txt", "x/y/3.txt", "xa/4.txt"]
    assert store.list("x/y/3") == ["x/y/3.txt"]
    assert store.list("") == ["x/1.txt", "x/2.txt", "x/y/3.txt", "xa/4.txt", "z.txt"]
    assert store.list("nothing/") == []


def test_list_versions_change_when_an_object_is_replaced(store: BlobStore) -> None:
    store.put("m/1.json", b"[1]")
    store.put("m/2.json", b"[2]")
    store.put("n/3.json", b"[3]")
    before = store.list_versions("m/")
    assert sorted(before) == store.list("m/") == ["m/1.json", "m/2.json"]
    store.put("m/2.json", b"[2, 22]")  # a marker rewritten under the same key
    after = store.list_versions("m/")
    assert after["m/1.json"] == before["m/1.json"]
    assert after["m/2.json"] != before["m/2.json"]


def test_put_file_and_empty_objects(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    payload = bytes(range(256)) * 40_000  # 10 MB: above one S3 part
    src.write_bytes(payload)
    store.put_file("files/big.bin", src)
    assert store.get("files/big.bin") == payload
    store.put("files/empty", b"")
    assert store.get("files/empty") == b""
    assert store.list("files/") == ["files/big.bin", "files/empty"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/./b", ".hidden/x", "a/.tmp"])
def test_bad_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put(key, b"x")


def test_local_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put("k/v", b"data")
    assert [p.name for p in (tmp_path / "blobs" / "k").iterdir()] == ["v"]


def test_urls_open_the_right_adapter(tmp_path: Path, s3_server: S3Server) -> None:
    local = open_blob((tmp_path / "d").as_uri())
    assert isinstance(local, LocalBlobStore)
    bucket = s3_server.bucket()
    s3 = open_blob(s3_server.url(bucket, "p/q"), access_key="k", secret_key="s")
    s3.put("one", b"1")
    assert s3.list("") == ["one"]
    assert S3Location.parse(s3_server.url(bucket, "p/q")).prefix == "p/q"
    for bad in ("ftp://x/y", "file://host/x", "s3:///nobucket"):
        with pytest.raises(ValueError, match="URL"):
            open_blob(bad)
    with pytest.raises(ValueError, match="unknown"):
        S3Location.parse("s3://b/p?endpoint=http://h:1&secret=x")
