"""Retention: each project's deployed policy applied on a schedule in every store."""
