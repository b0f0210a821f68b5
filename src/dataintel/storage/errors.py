"""Errors the storage floor raises. They know nothing of HTTP: ``api.problems`` maps them to
the service's ``ServiceError`` tree in one place (DESIGN.md §4: storage imports model/ only).
"""

from __future__ import annotations


class StorageError(Exception):
    """An engine refused or failed an operation; unmapped subclasses answer 503."""


class InvalidQuery(StorageError):
    """The query, its parameters or its arguments are invalid for the engine (answers 400)."""
