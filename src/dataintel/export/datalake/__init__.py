"""The data lake: every event of every project, continuously exported to the blob store as
Parquet partitioned by project and hour, each file committed exactly once by a marker
(docs/datalake.md, docs/adr/0010)."""
