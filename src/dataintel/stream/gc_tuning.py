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
"""

from __future__ import annotations

import gc

GEN0 = 50_000
GEN1 = 50
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
