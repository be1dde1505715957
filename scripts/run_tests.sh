#!/usr/bin/env bash
# README command 2: set up if needed, then run the whole test suite (CPU).
# Pass -m "not slow" to skip the end-to-end tests locally; CI runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest tests -q "$@"
