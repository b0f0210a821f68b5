"""Feast's side of bench/serving.py, run with Feast's own virtualenv (never a project
dependency): `bash bench/feast/setup.sh` creates bench/.venv-feast.

  setup DIR --values values.parquet   feature repo over the same 20 values per user,
                                      applied and materialized into Redis (db 1)
  serve DIR --port N                  Feast's Python feature server (HTTP), one worker
  historical DIR --labels L --table T point-in-time join, prints seconds (median of runs)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

STORE_YAML = """project: dataintel_bench
registry: {dir}/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:6379,db=1"
offline_store:
  type: file
entity_key_serialization_version: 3
"""

REPO_PY = """
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
source = FileSource(path="{path}", timestamp_field="event_timestamp")
user_stats = FeatureView(
    name="user_stats",
    entities=[user],
    ttl=timedelta(days=3650),
    schema=[{fields}],
    source=source,
    online=True,
)
"""


def _repo(directory: Path, values: Path, columns: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "feature_store.yaml").write_text(STORE_YAML.format(dir=directory))
    fields = ", ".join(f'Field(name="{c}", dtype=Float64)' for c in columns)
    (directory / "repo.py").write_text(REPO_PY.format(path=values, fields=fields))


def setup(directory: Path, values: Path) -> None:
    import pyarrow.parquet as pq

    columns = [c for c in pq.read_schema(values).names if c not in ("user_id", "event_timestamp")]
    _repo(directory, values, columns)
    feast = [str(Path(sys.executable).parent / "feast"), "-c", str(directory)]
    subprocess.run([*feast, "apply"], check=True, capture_output=True)
    end = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    start = time.perf_counter()
    subprocess.run(
        [*feast, "materialize", "2000-01-01T00:00:00", end], check=True, capture_output=True
    )
    print(json.dumps({"materialize_s": time.perf_counter() - start, "features": columns}))


def serve(directory: Path, port: int) -> None:
    feast = str(Path(sys.executable).parent / "feast")
    cmd = [feast, "-c", str(directory), "serve", "-h", "127.0.0.1", "-p", str(port)]
    cmd += ["--workers", "1", "--no-access-log"]
    subprocess.run(cmd, check=False)


def historical(directory: Path, labels: Path, table: Path, runs: int) -> None:
    import pandas as pd
    import pyarrow.parquet as pq
    from feast import FeatureStore

    columns = [c for c in pq.read_schema(table).names if c not in ("user_id", "event_timestamp")]
    _repo(directory, table, columns)
    feast = str(Path(sys.executable).parent / "feast")
    subprocess.run([feast, "-c", str(directory), "apply"], check=True, capture_output=True)
    store = FeatureStore(repo_path=str(directory))
    entity_df = pd.read_parquet(labels)
    refs = [f"user_stats:{c}" for c in columns]
    times = []
    rows = 0
    for _ in range(runs):
        start = time.perf_counter()
        out = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
        times.append(time.perf_counter() - start)
        rows = len(out)
    print(json.dumps({"seconds": statistics.median(times), "runs": times, "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "serve", "historical"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--values", type=Path)
    parser.add_argument("--port", type=int, default=6566)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--table", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.directory, args.values)
    elif args.command == "serve":
        serve(args.directory, args.port)
    else:
        historical(args.directory, args.labels, args.table, args.runs)


if __name__ == "__main__":
    main()
