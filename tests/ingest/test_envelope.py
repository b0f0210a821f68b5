"""Pure envelope helpers: timestamp forms and bounds (the HTTP tests cover the rest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dataintel.ingest.envelope import MAX_US, MIN_US, timestamp_us

T = int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", T * 10**6),
        ("2024-05-01T12:00:00+02:00", T * 10**6),
        ("2024-05-01T05:30:00.5-04:30", T * 10**6 + 500_000),
        ("2024-05-01 10:00:00 UTC", T * 10**6),
        ("2024-05-01T10:00:00", T * 10**6),
        (T, T * 10**6),
        (T * 1000, T * 10**6),
        (T * 1000 + 1, T * 10**6 + 1000),
        (T + 0.000001, T * 10**6 + 1),
        (0, 0),
        (-86400, -86400 * 10**6),
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59-01:00", None),
        (1e20, None),
        (-1e20, None),
        (True, None),
        (None, None),
        ([], None),
        ("", None),
        ("2024-13-01", None),
    ],
)
def test_timestamp_forms(value: Any, expected: int | None) -> None:
    got = timestamp_us(value)
    assert got == expected
    if got is not None:
        assert MIN_US <= got <= MAX_US
