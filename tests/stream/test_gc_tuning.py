"""The processor process collects garbage rarely and never walks its start-up heap."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import gc, json
from dataintel.stream.gc_tuning import GEN0, tune_gc
before = gc.get_threshold()
tune_gc()
tune_gc()
print(json.dumps({"before": before, "after": gc.get_threshold(), "gen0": GEN0,
                  "frozen": gc.get_freeze_count()}))
"""


def test_tune_gc_freezes_the_startup_heap_and_raises_the_thresholds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True
    ).stdout
    found = json.loads(out)
    assert found["before"] == [700, 10, 10]
    assert found["after"][0] == found["gen0"] > 700
    assert found["after"][1:] >= [10, 10]
    assert found["frozen"] > 1_000  # the imported modules are out of every collection
