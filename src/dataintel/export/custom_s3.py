"""A custom export written to the S3 bucket (``destination.type = s3``): Parquet files
partitioned by date, then a ``_manifest.json`` listing them. A reader waits for the manifest:
files without one belong to a run still going (or one a crash interrupted, whose retry
writes the same keys again)."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.export import formats
from dataintel.export.custom_query import Compiled
from dataintel.export.custom_schemas import CustomExport, S3Destination
from dataintel.storage.blob.port import BlobStore

TIME_COLUMNS = ("timestamp", "time")


def date_column(compiled: Compiled) -> str | None:
    """The column an S3 export is partitioned by: the rows' ``timestamp`` or the
    aggregates' ``time`` bucket; None when the export selects neither."""
    for name in TIME_COLUMNS:
        index = compiled.schema.get_field_index(name)
        if index >= 0 and pa.types.is_timestamp(compiled.schema.field(index).type):
            return name
    return None


def base_key(project_id: str, destination: S3Destination, report_id: str) -> str:
    return f"exports/project_id={project_id}/{destination.prefix}/{report_id}"


def write(
    store: BlobStore, base: str, table: pa.Table, column: str, doc: CustomExport
) -> list[dict[str, Any]]:
    """PUT one Parquet file per date of ``column``, then the manifest; the files written."""
    dates = pc.strftime(table.column(column), "%Y-%m-%d")
    files = []
    for date in sorted(pc.unique(dates).to_pylist(), key=lambda d: (d is None, d)):
        rows = table.filter(pc.is_null(dates) if date is None else pc.equal(dates, date))
        key = f"{base}/date={date or '__HIVE_DEFAULT_PARTITION__'}/part-00000.parquet"
        store.put(key, b"".join(formats.parquet(rows.to_batches(), table.schema)))
        files.append({"key": key, "date": date, "rows": rows.num_rows})
    manifest = {
        "files": files,
        "rows": table.num_rows,
        "partitioned_by": f"date of {column} (UTC)",
        "query": doc.model_dump(mode="json", by_alias=True, exclude={"destination"}),
    }
    store.put(f"{base}/_manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return files
