#!/usr/bin/env bash
# Feast's side of the serving / historical benchmarks lives in its own virtualenv,
# bench/.venv-feast (git-ignored), never in the project's dependencies.
#   bash bench/feast/setup.sh
#   bench/.venv-feast/bin/python bench/feast/run.py --serving --historical --out bench/results-feast.json
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv-feast"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$venv/bin/python" -c "import feast, sys; print('feast', feast.__version__, 'in', sys.prefix)"
