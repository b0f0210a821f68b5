"""The garbage collector in a process that runs the stream processor.

The processor allocates millions of short-lived containers per second (decoded rows, tile
states) while the process holds a large, long-lived heap (cached blobs, imported modules).
With CPython's default thresholds (700, 10, 10) a young collection runs every 700 net
allocations and every 100th walks the whole heap: measured on bench/features.py this was
about half the processor's time. Almost none of the processor's garbage is cyclic (it is
freed by reference counting), so collecting rarely loses nothing:

- ``gc.freeze()`` after start-up moves everything alive then (modules, config, the app) to a
  permanent generation that collections never walk;
- young collections every ``GEN0`` allocations, full ones rarely.

The same process may also serve (embedded mode), where a collection is a pause of every
request in flight: a young collection walks up to ``GEN0`` objects and a middle one the
survivors of ``GEN1`` young ones. Measured under bench/serving.py at 1,000 req/s (pauses
logged with ``gc.callbacks``): (50,000, 50, 100) paused 13 ms at the median and up to 44 ms
(young) and 480 ms (middle), so the serving p99 was 10-60 ms; (5,000, 10, 100) pauses 4 ms
(young) and 15 ms (middle) on average and the p99 fell to 3.5 ms, at the same processor
throughput on bench/features.py (within run-to-run noise).
"""

from __future__ import annotations

import gc

GEN0 = 5_000
GEN1 = 10
GEN2 = 100
_tuned = False


def tune_gc() -> None:
    """Freeze the start-up heap and raise the thresholds (once per process)."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0, GEN1, GEN2)
