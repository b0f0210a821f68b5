"""Where report files live: a directory (``Settings.resolved_reports_dir``) every process
that serves or generates reports sees. A file is written under a temporary name, synced and
renamed, so a reader (or a restart after kill -9) never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


class ReportFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, report_id: str, attempt: int, extension: str) -> Path:
        """One file per run: a run that lost its lease never writes the file of another."""
        return self.root / f"{report_id}.{attempt}.{extension}"

    def write(self, path: Path, body: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)

    def delete(self, path: str | Path) -> None:
        Path(path).unlink(missing_ok=True)

    def delete_runs(self, report_id: str, keep: Path | None = None) -> None:
        """Files and leftovers of every run of a report but ``keep`` (a run killed while
        writing leaves a ``.tmp``, one killed after writing a file nobody points to)."""
        for leftover in self.root.glob(f"{report_id}.*"):
            if leftover != keep:
                leftover.unlink(missing_ok=True)
