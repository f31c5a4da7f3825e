#!/usr/bin/env bash
# The test suite (slow-marked tests included; pass -m "not slow" for the quick subset).
# Creates or reuses .venv and installs the project with its dev extras first, then runs
# each test group in its own pytest process (scripts/run_tests.py) and prints one
# combined "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/python scripts/run_tests.py "$@"
