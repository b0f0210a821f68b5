"""The BlobStore port (reports, exports, the data lake): a local directory or an
S3-compatible bucket."""
