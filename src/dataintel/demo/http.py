"""A minimal JSON client of the service's public API (the demo runs beside the server)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any


class Api:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        request = urllib.request.Request(  # noqa: S310 - the service's own http URL
            f"{self.base_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return json.load(resp)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(  # noqa: S310
                    f"{self.base_url}/health/ready", timeout=2
                ):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
