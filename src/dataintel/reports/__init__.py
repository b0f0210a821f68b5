"""Reports: an analysis or an export query, generated asynchronously by a worker into a file
(CSV, JSON, Parquet, PDF with charts), kept until it expires."""
