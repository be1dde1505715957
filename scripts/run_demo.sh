#!/usr/bin/env bash
# README command 1: set up if needed, then run the offline end-to-end demo.
# usage: scripts/run_demo.sh [WORK_DIR] [run.sh options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bash examples/synthetic/run.sh "$@"
