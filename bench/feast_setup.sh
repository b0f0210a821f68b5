#!/usr/bin/env bash
# Feast for the side-by-side benchmarks, in its own virtualenv (never a project dependency).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv-feast
.venv-feast/bin/pip install -q -r feast-requirements.txt
