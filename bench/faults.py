"""The cluster fault suite with the issue's 20 s outages: tests/faults/test_cluster_faults.py
(the same code; the test suite runs 5 s outages), printing what the clients saw during each
fault (requests, p50/p99/max latency, error rate, stale answers, status codes per route).

    python bench/faults.py [--outage 20] [-- extra pytest args]

Needs what the suite needs: PostgreSQL and Redis on 127.0.0.1, nginx, the Tansu broker,
moto's S3 server (the dev requirements) and the right to mount a tmpfs (root) for the spool
disk-full phase (skipped without it). Every test of the file runs, so new faults are in.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds per fault")
    args, extra = parser.parse_known_args()
    env = {
        **os.environ,
        "DATAINTEL_FAULT_OUTAGE_SECONDS": str(args.outage),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    test = ROOT / "tests" / "faults" / "test_cluster_faults.py"
    argv = [sys.executable, "-m", "pytest", "-s", "-v", "-p", "no:cacheprovider", str(test)]
    sys.exit(subprocess.call([*argv, *[a for a in extra if a != "--"]], cwd=ROOT, env=env))


if __name__ == "__main__":
    main()
