"""Where the data lake's objects live and what a commit marker holds (docs/datalake.md).

    events/project_id=<p>/hour=<YYYY-MM-DDTHH>/part-p<log partition>-<first>-<last>[.r<n>].parquet
    _committed/partition=<log partition>/<first>-<last>.json

A data file is named by the log range of the micro-batch that wrote it, so a batch written
again after a crash writes the same names. ``.r<n>`` marks the n-th rewrite of a file by
``erase_subject``. A file is part of the lake only while a commit marker lists it: readers
go through the markers, never through a listing of ``events/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

EVENTS = "events/"
MARKERS = "_committed/"
GROUP = "dataintel-datalake"  # the data lake's consumer group on the EventLog
_MARKER = re.compile(r"partition=(\d+)/(\d{20})-(\d{20})\.json$")
_FILE = re.compile(r"part-p(\d+)-(\d{20})-(\d{20})(?:\.r(\d+))?\.parquet$")


def marker_prefix(partition: int) -> str:
    return f"{MARKERS}partition={partition}/"


def marker_key(partition: int, first: int, last: int) -> str:
    return f"{marker_prefix(partition)}{first:020d}-{last:020d}.json"


def file_key(project_id: str, hour: str, partition: int, first: int, last: int) -> str:
    name = f"part-p{partition}-{first:020d}-{last:020d}.parquet"
    return f"{EVENTS}project_id={project_id}/hour={hour}/{name}"


def rewrite_key(key: str) -> str:
    """The key the next rewrite of the file ``key`` gets (``.r1``, ``.r2``, ...)."""
    match = _FILE.search(key)
    if match is None:
        raise ValueError(f"not a data lake file: {key!r}")
    n = int(match.group(4) or 0) + 1
    stem = key[: match.start()]
    p, first, last = match.group(1), match.group(2), match.group(3)
    return f"{stem}part-p{p}-{first}-{last}.r{n}.parquet"


def parse_marker_key(key: str) -> tuple[int, int, int] | None:
    """(log partition, first offset, last offset) of a marker's key."""
    match = _MARKER.search(key)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


@dataclass(frozen=True, slots=True)
class FileName:
    key: str
    partition: int
    first: int
    last: int


def parse_file(key: str) -> FileName | None:
    match = _FILE.search(key)
    if match is None:
        return None
    return FileName(key, int(match.group(1)), int(match.group(2)), int(match.group(3)))


@dataclass(frozen=True, slots=True)
class DataFile:
    key: str
    project_id: str
    hour: str
    rows: int


@dataclass(frozen=True, slots=True)
class Marker:
    """The commit of one micro-batch of one log partition: its offset range and its files."""

    partition: int
    first_offset: int
    last_offset: int
    files: tuple[DataFile, ...]
    committed_at: str

    @property
    def key(self) -> str:
        return marker_key(self.partition, self.first_offset, self.last_offset)

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": 1,
                "partition": self.partition,
                "first_offset": self.first_offset,
                "last_offset": self.last_offset,
                "next_offset": self.next_offset,
                "committed_at": self.committed_at,
                "files": [
                    {"key": f.key, "project_id": f.project_id, "hour": f.hour, "rows": f.rows}
                    for f in self.files
                ],
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes) -> Marker:
        doc = orjson.loads(data)
        files = tuple(
            DataFile(f["key"], f["project_id"], f["hour"], int(f["rows"])) for f in doc["files"]
        )
        return cls(
            int(doc["partition"]),
            int(doc["first_offset"]),
            int(doc["last_offset"]),
            files,
            str(doc["committed_at"]),
        )

    def replacing(self, old: str, new: DataFile | None) -> Marker:
        """This marker with the file ``old`` replaced by ``new`` (dropped when None)."""
        files: list[DataFile] = []
        for f in self.files:
            if f.key != old:
                files.append(f)
            elif new is not None:
                files.append(new)
        return Marker(
            self.partition, self.first_offset, self.last_offset, tuple(files), self.committed_at
        )


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
