"""Batch features: computed on a schedule in the analytics store, served from the online store."""
