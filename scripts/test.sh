#!/usr/bin/env bash
# The test suite (slow-marked tests included; pass -m "not slow" for the quick subset).
# Creates or reuses .venv and installs the project with its dev extras first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
exec .venv/bin/python -m pytest -q "$@"
