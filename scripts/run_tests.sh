#!/usr/bin/env bash
# README command 2: set up if needed, then run the whole test suite (CPU).
# Pass -m "not slow" to skip the end-to-end tests locally; CI runs them all.
# Two pytest-xdist workers, one per core of the 2-core machines the suite is sized for
# (pytest.ini: whole files per worker; conftest.py: the shared pipeline is built once);
# pass -n 0 to run in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests -q -n 2 "$@"
