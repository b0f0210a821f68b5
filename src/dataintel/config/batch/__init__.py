"""Batch features: aggregations computed on a schedule in the analytics store."""
